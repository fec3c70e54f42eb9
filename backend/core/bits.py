"""Bit-level intrinsics for numba kernels (LLVM bitcast and count-trailing-zeros): the fast exp and log of the
renderer and the tone mapper build floats from their bits."""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def f32_bits(typingctx, x):
    """Reinterpret a float32's bits as an int32."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (e.g. (k + 127) << 23 is 2^k)."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def ctz(typingctx, bits):
    """Count trailing zeros of a nonzero int64: the index of its lowest set bit."""

    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.int64(types.int64), codegen
