"""The lamp types a render request may carry (Blender's light types), named once for both sides."""

LAMP_TYPES = ("sun", "point", "spot", "area")  # Blender's SUN, POINT, SPOT, AREA in lower case
