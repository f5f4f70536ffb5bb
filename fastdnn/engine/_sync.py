"""Atomics and waiting for compiled code: what the engine's threads hand work out with.

All counters are int64 array elements. ``fetch_add`` and ``compare_exchange`` are
sequentially consistent; ``load`` has acquire and ``store`` release ordering, so a thread
that sees a counter reach a value also sees every write made before it was raised.

``pause`` is the spin-loop hint of the CPU (x86 ``pause``, AArch64 ``yield``); ``nap``
sleeps the calling thread for about ``microseconds`` (libc ``usleep``): a waiting thread
that naps leaves its core idle, so the kernel can run a thread that was descheduled
there, which is what a wait for that thread's work needs on a busy machine.
"""
import ctypes
import platform

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _element_pointer(context, builder, array_type, array, index):
    ary = context.make_array(array_type)(context, builder, array)
    return builder.gep(ary.data, [index])


@intrinsic
def fetch_add(typingctx, counters, index, value):
    """counters[index] += value atomically; returns the value before."""
    sig = types.int64(counters, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")
    return sig, codegen


@intrinsic
def compare_exchange(typingctx, counters, index, expected, new):
    """counters[index] = new if it equals ``expected`` (atomically); True if it did."""
    sig = types.boolean(counters, types.intp, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)
    return sig, codegen


@intrinsic
def load(typingctx, counters, index):
    """counters[index], read atomically (acquire): never hoisted out of a wait loop."""
    sig = types.int64(counters, types.intp)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)
    return sig, codegen


@intrinsic
def store(typingctx, counters, index, value):
    """counters[index] = value, written atomically (release)."""
    sig = types.void(counters, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()
    return sig, codegen


_MACHINE = platform.machine().lower()


@intrinsic
def pause(typingctx):
    """The CPU's spin-wait hint (nothing where the architecture has none)."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        if _MACHINE in ("x86_64", "amd64"):
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(fn, [])
        elif _MACHINE in ("aarch64", "arm64"):   # hint #1 is "yield"
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(32)]),
                "llvm.aarch64.hint")
            builder.call(fn, [ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()
    return sig, codegen


# libc's usleep under a name of our own, registered at every import so cached compiled
# code finds it in the next process too
_libc = ctypes.CDLL(None)
llvm.add_symbol("fastdnn_usleep", ctypes.cast(_libc.usleep, ctypes.c_void_p).value)
nap = types.ExternalFunction("fastdnn_usleep", types.int32(types.uint32))
