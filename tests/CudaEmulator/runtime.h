// The CUDA device environment of the emulator, prepended by the emulator's NVRTC to every kernel
// source before g++ compiles it into a shared object. A launch runs its blocks one after another.
// A kernel without __syncthreads runs its threads one after another as plain calls; in one with
// barriers the threads of a block are fibers on the calling thread, switched only at __syncthreads
// (a six-register x86-64 context switch), so shared memory, barriers and atomics behave as on a GPU
// for race-free kernels.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <type_traits>
#include <vector>

#if !defined(__x86_64__)
#error "the Flows CUDA emulator's fibers switch x86-64 registers; this machine is not x86-64"
#endif

using namespace std;

#define FLOWS_EXPORT extern "C" __attribute__((visibility("default")))

struct uint3 { unsigned int x, y, z; };
typedef uint3 dim3;

// The built-in variables: set by the scheduler before each fiber resumes.
uint3 threadIdx, blockIdx, blockDim, gridDim;

#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __shared__ static
#define __restrict__ __restrict
// The scan pass (-DFLOWS_EMU_SCAN) marks kernels so the emulator's NVRTC can find their names.
#ifdef FLOWS_EMU_SCAN
#define __global__ FLOWS_KERNEL_MARK
#else
#define __global__
#endif

// Saves the callee-saved registers on the current stack and its pointer in *save, then resumes the
// stack `load` (as saved by an earlier switch, or prepared by flows_emu::start).
extern "C" void flows_emu_switch(void** save, void* load);
asm(R"(
    .text
    .p2align 4
    .globl flows_emu_switch
    .hidden flows_emu_switch
    .type flows_emu_switch, @function
flows_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size flows_emu_switch, .-flows_emu_switch
)");

namespace flows_emu {

struct Fiber {
    void* stackPointer;
    std::vector<char> stack;
    uint3 index;
    bool done;
};

inline void* scheduler;
inline std::vector<Fiber> fibers;
inline size_t current;
inline void (*body)(void**);
inline void** arguments;
inline std::vector<unsigned char> dynamicShared;
inline bool fibersRunning;
inline bool strayBarrier;

// A fiber's first frame: runs the thread, then hands control back for good.
inline void enter() {
    body(arguments);
    fibers[current].done = true;
    flows_emu_switch(&fibers[current].stackPointer, scheduler);
}

// A fresh fiber's stack: six zero registers, then `enter` for the switch's `ret` to jump to, with
// the stack 16-byte aligned at its entry as after a call.
inline void* start(std::vector<char>& stack) {
    auto top = reinterpret_cast<uintptr_t>(stack.data() + stack.size()) & ~uintptr_t(15);
    void** sp = reinterpret_cast<void**>(top);
    *--sp = nullptr; // where a return address would be
    *--sp = reinterpret_cast<void*>(&enter);
    for (int r = 0; r < 6; ++r) *--sp = nullptr;
    return sp;
}

inline void syncthreads() {
    // the scan found no __syncthreads in this kernel's body (one in a helper it calls): report it
    if (!fibersRunning) { strayBarrier = true; return; }
    flows_emu_switch(&fibers[current].stackPointer, scheduler);
}

// Runs one block of a kernel without barriers: each thread to completion in turn.
inline void runBlockDirect(unsigned count) {
    for (unsigned t = 0; t < count; ++t) {
        threadIdx = { t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y) };
        body(arguments);
    }
}

// Stack for each thread: kernels keep a few structs of shape and strides on it.
constexpr size_t StackBytes = 64 * 1024;

// Runs one block: every live fiber runs until it finishes or reaches __syncthreads; a barrier is
// released once every fiber still running has reached it.
inline void runBlock(unsigned count) {
    if (fibers.size() < count) fibers.resize(count);
    for (unsigned t = 0; t < count; ++t) {
        Fiber& f = fibers[t];
        if (f.stack.empty()) f.stack.resize(StackBytes);
        f.done = false;
        f.index = { t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y) };
        f.stackPointer = start(f.stack);
    }
    bool live = true;
    while (live) {
        live = false;
        for (unsigned t = 0; t < count; ++t) {
            if (fibers[t].done) continue;
            current = t;
            threadIdx = fibers[t].index;
            flows_emu_switch(&scheduler, fibers[t].stackPointer);
            live = live || !fibers[t].done;
        }
    }
}

// Calls kernel `f` with the launch's argument array: args[i] points at the value of parameter i.
template <class... A, size_t... I>
void invokeWith(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

template <class... A>
void invoke(void (*f)(A...), void** args) { invokeWith(f, args, std::index_sequence_for<A...>{}); }

} // namespace flows_emu

// One launch: the grid's blocks in order, as fibers when the kernel has barriers. Returns 0, or a
// CUDA error code for a bad geometry or a barrier the scan did not see.
FLOWS_EXPORT int flows_emu_run(void (*trampoline)(void**), int barriers, dim3 grid, dim3 block, unsigned sharedBytes, void** args) {
    using namespace flows_emu;
    unsigned threads = block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64) return 1; // CUDA_ERROR_INVALID_VALUE
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) return 1;
    if (sharedBytes > 48 * 1024) return 1; // above 48 KiB needs an opt-in attribute Flows does not set
    body = trampoline;
    arguments = args;
    blockDim = block;
    gridDim = grid;
    // fresh shared memory holds garbage on a GPU: NaN bytes catch a kernel that reads before writing
    dynamicShared.assign(sharedBytes + 16, 0xFF);
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                blockIdx = { x, y, z };
                fibersRunning = barriers != 0;
                strayBarrier = false;
                if (barriers) runBlock(threads); else runBlockDirect(threads);
                if (strayBarrier) return 719; // CUDA_ERROR_LAUNCH_FAILED
            }
    return 0;
}

#define DYNAMIC_SHARED(name) unsigned char* name = flows_emu::dynamicShared.data()

inline void __syncthreads() { flows_emu::syncthreads(); }

// One fiber runs at a time, so a read-modify-write is atomic.
template <typename T> inline T atomicAdd(T* address, T value) { T old = *address; *address = old + value; return old; }

inline float __int_as_float(int bits) { float f; std::memcpy(&f, &bits, 4); return f; }
inline int __float_as_int(float f) { int bits; std::memcpy(&bits, &f, 4); return bits; }
inline double __longlong_as_double(long long bits) { double d; std::memcpy(&d, &bits, 8); return d; }

// common.cuh defines INFINITY from its bit pattern, as NVRTC has no math.h
#undef INFINITY
