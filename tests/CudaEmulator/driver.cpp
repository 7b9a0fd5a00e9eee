// The emulator's CUDA driver: one device whose memory is host memory, one context, streams that run
// everything at once (in order, as one CUDA stream would), modules that are shared objects built by
// the emulator's NVRTC, launches run by the module's own scheduler (runtime.h). It checks what a
// real driver checks that Flows could get wrong: copies stay inside live allocations, launches have
// a valid geometry, the function belongs to a loaded module.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <mutex>
#include <string>
#include <unistd.h>

#include "image.h"

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

enum Result : int {
    Success = 0, InvalidValue = 1, OutOfMemory = 2, NotInitialized = 3, InvalidDevice = 101,
    InvalidImage = 200, InvalidContext = 201, InvalidHandle = 400, NotFound = 500, LaunchFailed = 719
};

struct Dim { unsigned x, y, z; };
typedef int (*Runner)(void (*)(void**), int, Dim, Dim, unsigned, void**);

struct Module { void* library; Runner run; };
struct Function { Module* module; void (*trampoline)(void**); int barriers; };

std::mutex lock;
bool initialised = false;
std::map<uint64_t, size_t> allocations; // start → bytes
size_t inUse = 0;
size_t totalMemory = size_t(4) << 30; // FLOWS_EMU_MEMORY_MB sets it at cuInit
int contextToken = 0;

// Whether [p, p + bytes) lies inside one live allocation.
bool inside(uint64_t p, size_t bytes) {
    std::lock_guard<std::mutex> guard(lock);
    auto it = allocations.upper_bound(p);
    if (it == allocations.begin()) return false;
    --it;
    return p + bytes <= it->first + it->second;
}

} // namespace

EXPORT int cuInit(unsigned flags) {
    if (flags != 0) return InvalidValue;
    if (const char* mb = std::getenv("FLOWS_EMU_MEMORY_MB")) totalMemory = size_t(std::strtoull(mb, nullptr, 10)) << 20;
    initialised = true;
    return Success;
}
EXPORT int cuDriverGetVersion(int* version) { *version = 13000; return Success; }
EXPORT int cuDeviceGetCount(int* count) { if (!initialised) return NotInitialized; *count = 1; return Success; }
EXPORT int cuDeviceGet(int* device, int ordinal) { if (ordinal != 0) return InvalidDevice; *device = 0; return Success; }

EXPORT int cuDeviceGetAttribute(int* value, int attribute, int device) {
    if (device != 0) return InvalidDevice;
    switch (attribute) {
    case 1: *value = 1024; return Success;  // max threads per block
    case 8: *value = 48 * 1024; return Success; // shared memory per block
    case 16: *value = 1; return Success;    // multiprocessors
    case 75: *value = 9; return Success;    // compute capability major
    case 76: *value = 0; return Success;    // minor
    default: *value = 0; return Success;
    }
}

EXPORT int cuDeviceGetName(char* name, int length, int device) {
    if (device != 0) return InvalidDevice;
    std::snprintf(name, length, "Flows CUDA emulator (CPU)");
    return Success;
}

EXPORT int cuDevicePrimaryCtxRetain(void** context, int device) {
    if (device != 0) return InvalidDevice;
    *context = &contextToken;
    return Success;
}

EXPORT int cuCtxSetCurrent(void* context) { return context == &contextToken || context == nullptr ? Success : InvalidContext; }
EXPORT int cuCtxSynchronize() { return Success; }
// every launch runs at once, in order: one stream token serves every stream
EXPORT int cuStreamCreate(void** stream, unsigned) { *stream = &contextToken; return Success; }
EXPORT int cuStreamSynchronize(void*) { return Success; }

EXPORT int cuMemAlloc_v2(uint64_t* pointer, size_t bytes) {
    if (bytes == 0) return InvalidValue;
    std::lock_guard<std::mutex> guard(lock);
    if (inUse + bytes > totalMemory) return OutOfMemory;
    void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!p) return OutOfMemory;
    // fresh device memory holds garbage: NaN bytes catch a read before the first write
    std::memset(p, 0xFF, bytes);
    *pointer = reinterpret_cast<uint64_t>(p);
    allocations[*pointer] = bytes;
    inUse += bytes;
    return Success;
}

EXPORT int cuMemFree_v2(uint64_t pointer) {
    std::lock_guard<std::mutex> guard(lock);
    auto it = allocations.find(pointer);
    if (it == allocations.end()) return InvalidValue;
    inUse -= it->second;
    allocations.erase(it);
    std::free(reinterpret_cast<void*>(pointer));
    return Success;
}

EXPORT int cuMemGetInfo_v2(size_t* free, size_t* total) {
    std::lock_guard<std::mutex> guard(lock);
    *free = totalMemory - inUse;
    *total = totalMemory;
    return Success;
}

EXPORT int cuMemcpyHtoDAsync_v2(uint64_t target, const void* source, size_t bytes, void*) {
    if (!inside(target, bytes)) return InvalidValue;
    std::memcpy(reinterpret_cast<void*>(target), source, bytes);
    return Success;
}

EXPORT int cuMemcpyDtoHAsync_v2(void* target, uint64_t source, size_t bytes, void*) {
    if (!inside(source, bytes)) return InvalidValue;
    std::memcpy(target, reinterpret_cast<const void*>(source), bytes);
    return Success;
}

EXPORT int cuMemcpyDtoDAsync_v2(uint64_t target, uint64_t source, size_t bytes, void*) {
    if (!inside(target, bytes) || !inside(source, bytes)) return InvalidValue;
    std::memmove(reinterpret_cast<void*>(target), reinterpret_cast<const void*>(source), bytes);
    return Success;
}

EXPORT int cuModuleLoadData(void** module, const void* image) {
    const char* bytes = static_cast<const char*>(image);
    if (std::memcmp(bytes, ImageMagic, 8) != 0) return InvalidImage; // a real cubin, not ours
    uint64_t size;
    std::memcpy(&size, bytes + 8, 8);
    char path[] = "/tmp/flows-emu-module-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return InvalidImage;
    bool written = write(fd, bytes + 16, size) == static_cast<ssize_t>(size);
    close(fd);
    void* library = written ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : nullptr;
    unlink(path);
    if (!library) {
        std::fprintf(stderr, "flows CUDA emulator: %s\n", dlerror());
        return InvalidImage;
    }
    auto run = reinterpret_cast<Runner>(dlsym(library, "flows_emu_run"));
    if (!run) return InvalidImage;
    *module = new Module{ library, run };
    return Success;
}

EXPORT int cuModuleGetFunction(void** function, void* module, const char* name) {
    if (!module) return InvalidHandle;
    auto m = static_cast<Module*>(module);
    auto trampoline = reinterpret_cast<void (*)(void**)>(dlsym(m->library, (std::string("flows_emu_kernel_") + name).c_str()));
    auto barriers = static_cast<const int*>(dlsym(m->library, (std::string("flows_emu_barriers_") + name).c_str()));
    if (!trampoline || !barriers) return NotFound;
    *function = new Function{ m, trampoline, *barriers };
    return Success;
}

EXPORT int cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned sharedBytes, void*, void** params, void** extra) {
    if (!function) return InvalidHandle;
    if (extra) return InvalidValue; // Flows passes kernel parameters, never `extra`
    auto f = static_cast<Function*>(function);
    std::lock_guard<std::mutex> guard(lock); // one launch at a time: the runtime's scheduler is global
    return f->module->run(f->trampoline, f->barriers, Dim{ gx, gy, gz }, Dim{ bx, by, bz }, sharedBytes, params);
}

EXPORT int cuGetErrorName(int code, const char** text) {
    switch (code) {
    case Success: *text = "CUDA_SUCCESS"; break;
    case InvalidValue: *text = "CUDA_ERROR_INVALID_VALUE"; break;
    case OutOfMemory: *text = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case NotInitialized: *text = "CUDA_ERROR_NOT_INITIALIZED"; break;
    case InvalidDevice: *text = "CUDA_ERROR_INVALID_DEVICE"; break;
    case InvalidImage: *text = "CUDA_ERROR_INVALID_IMAGE"; break;
    case InvalidContext: *text = "CUDA_ERROR_INVALID_CONTEXT"; break;
    case InvalidHandle: *text = "CUDA_ERROR_INVALID_HANDLE"; break;
    case NotFound: *text = "CUDA_ERROR_NOT_FOUND"; break;
    case LaunchFailed: *text = "CUDA_ERROR_LAUNCH_FAILED"; break;
    default: *text = nullptr; return InvalidValue;
    }
    return Success;
}

EXPORT int cuGetErrorString(int code, const char** text) {
    const char* name;
    if (cuGetErrorName(code, &name) != Success) { *text = nullptr; return InvalidValue; }
    *text = "reported by the Flows CUDA emulator";
    return Success;
}
