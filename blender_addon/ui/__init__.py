"""The add-on's Blender UI: properties, operators, the sidebar panel and preferences; each module exports CLASSES."""
