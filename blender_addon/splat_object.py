"""Gaussian splats as a Blender object (scene I/O for splats, beside scene_io.py): a mesh of points carrying each
Gaussian's position, orientation, scale, opacity, albedo, roughness, metallic and normal as attributes, Geometry
Nodes that instance an oriented disc per point, and a material that reads the attributes into a Principled BSDF, so
EEVEE and Cycles relight the splats with the scene's own lights, with no backend."""

from __future__ import annotations

import bpy
import numpy as np

NODE_GROUP_NAME = "Relight Splat Discs"
MATERIAL_NAME = "Relight Splat Material"
DISC_VERTICES = 10  # corners of the polygon drawn for each Gaussian
DISC_RADIUS = 2.0  # disc radius in standard deviations along each local axis (the Gaussian at 13.5 % of its peak)
ATTRIBUTES = {  # attribute name -> (Blender data type, array key of splat_ply.read_splat_ply)
    "rotation": ("QUATERNION", "quats"),
    "scale": ("FLOAT_VECTOR", "scales"),
    "opacity": ("FLOAT", "opacities"),
    "albedo": ("FLOAT_COLOR", "albedo"),
    "roughness": ("FLOAT", "roughness"),
    "metallic": ("FLOAT", "metallic"),
    "splat_normal": ("FLOAT_VECTOR", "normals"),  # ("normal" is Blender's own, computed from the faces)
}


def points_mesh(name: str, splats: dict):
    """A mesh with one vertex per Gaussian and the ATTRIBUTES on its points."""
    mesh = bpy.data.meshes.new(name)
    positions = splats["positions"]
    mesh.vertices.add(len(positions))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(positions, np.float32).ravel())
    for attr, (kind, key) in ATTRIBUTES.items():
        values = np.asarray(splats[key], np.float32)
        layer = mesh.attributes.new(attr, kind, "POINT")
        if kind == "FLOAT_COLOR":
            rgba = np.concatenate([values, np.ones((len(values), 1), np.float32)], 1)
            layer.data.foreach_set("color", rgba.ravel())
        elif kind == "FLOAT_VECTOR":
            layer.data.foreach_set("vector", values.ravel())
        else:  # FLOAT, QUATERNION (w, x, y, z)
            layer.data.foreach_set("value", values.ravel())
    mesh.update()
    return mesh


def _named(nodes, name: str, kind: str, location):
    node = nodes.new("GeometryNodeInputNamedAttribute")
    node.data_type = kind
    node.inputs["Name"].default_value = name
    node.location = location
    return node


def disc_node_group():
    """Geometry Nodes: points -> an oriented disc per point (Mesh Circle in local XY, the Gaussian's local z being
    its normal), rotated by the point's `rotation`, scaled by DISC_RADIUS x its `scale`, realized so the point
    attributes reach every disc vertex, with the splat material."""
    group = bpy.data.node_groups.get(NODE_GROUP_NAME)
    if group is not None:
        return group
    group = bpy.data.node_groups.new(NODE_GROUP_NAME, "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    radius = group.interface.new_socket("Disc Radius", in_out="INPUT", socket_type="NodeSocketFloat")
    radius.default_value, radius.min_value = DISC_RADIUS, 0.0
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    gin, gout = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    gin.location, gout.location = (-800, 0), (600, 0)
    circle = nodes.new("GeometryNodeMeshCircle")
    circle.fill_type = "NGON"
    circle.inputs["Vertices"].default_value = DISC_VERTICES
    circle.inputs["Radius"].default_value = 1.0
    circle.location = (-500, -150)
    rotation = _named(nodes, "rotation", "QUATERNION", (-500, -320))
    scale = _named(nodes, "scale", "FLOAT_VECTOR", (-700, -480))
    times = nodes.new("ShaderNodeVectorMath")
    times.operation = "SCALE"
    times.location = (-500, -480)
    links.new(scale.outputs["Attribute"], times.inputs[0])
    links.new(gin.outputs["Disc Radius"], times.inputs["Scale"])
    inst = nodes.new("GeometryNodeInstanceOnPoints")
    inst.location = (-200, 0)
    links.new(gin.outputs["Geometry"], inst.inputs["Points"])
    links.new(circle.outputs["Mesh"], inst.inputs["Instance"])
    links.new(rotation.outputs["Attribute"], inst.inputs["Rotation"])
    links.new(times.outputs["Vector"], inst.inputs["Scale"])
    realize = nodes.new("GeometryNodeRealizeInstances")
    realize.location = (100, 0)
    links.new(inst.outputs["Instances"], realize.inputs["Geometry"])
    material = nodes.new("GeometryNodeSetMaterial")
    material.inputs["Material"].default_value = splat_material()
    material.location = (350, 0)
    links.new(realize.outputs["Geometry"], material.inputs["Geometry"])
    links.new(material.outputs["Geometry"], gout.inputs["Geometry"])
    return group


def splat_material():
    """Principled BSDF fed by the attributes: albedo (linear) -> Base Color, roughness, metallic, opacity -> Alpha,
    splat_normal (object space) -> world space -> Normal."""
    mat = bpy.data.materials.get(MATERIAL_NAME)
    if mat is not None:
        return mat
    mat = bpy.data.materials.new(MATERIAL_NAME)
    if bpy.app.version < (5, 0, 0):  # 5.0 gives every material a node tree and deprecates use_nodes
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")

    def attribute(name: str, y: float):
        node = nodes.new("ShaderNodeAttribute")
        node.attribute_type = "GEOMETRY"
        node.attribute_name = name
        node.location = (-600, y)
        return node

    links.new(attribute("albedo", 300).outputs["Color"], bsdf.inputs["Base Color"])
    links.new(attribute("roughness", 100).outputs["Fac"], bsdf.inputs["Roughness"])
    links.new(attribute("metallic", -100).outputs["Fac"], bsdf.inputs["Metallic"])
    links.new(attribute("opacity", -300).outputs["Fac"], bsdf.inputs["Alpha"])
    to_world = nodes.new("ShaderNodeVectorTransform")
    to_world.vector_type, to_world.convert_from, to_world.convert_to = "NORMAL", "OBJECT", "WORLD"
    to_world.location = (-300, -500)
    links.new(attribute("splat_normal", -500).outputs["Vector"], to_world.inputs["Vector"])
    links.new(to_world.outputs["Vector"], bsdf.inputs["Normal"])
    return mat


def splats_to_object(name: str, splats: dict, collection=None):
    """The splats (splat_ply.read_splat_ply's arrays) -> a new object `name` with the disc modifier, linked into
    `collection` (default the scene's); returns it."""
    obj = bpy.data.objects.new(name, points_mesh(name, splats))
    modifier = obj.modifiers.new("Relight Splats", "NODES")
    modifier.node_group = disc_node_group()
    obj.data.materials.append(splat_material())
    (collection or bpy.context.scene.collection).objects.link(obj)
    return obj
