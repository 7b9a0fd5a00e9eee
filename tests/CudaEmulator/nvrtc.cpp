// The emulator's NVRTC: "compiles" a kernel source by prepending runtime.h and building it with g++
// into a shared object, whose bytes stand for the cubin. A scan pass finds the kernels' names and a
// trampoline per kernel unpacks cuLaunchKernel's argument array into a typed call.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "image.h"

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct Program {
    std::string source, name, log;
    std::vector<char> image;
};

std::string folderOfThisLibrary() {
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(&folderOfThisLibrary), &info);
    std::string path = info.dli_fname ? info.dli_fname : "";
    return path.substr(0, path.find_last_of('/'));
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Runs a shell command, appending what it printed to `log`; true when it exited with 0.
bool run(const std::string& command, std::string& log) {
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (!pipe) { log += "could not start: " + command + "\n"; return false; }
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) log.append(buffer, n);
    return pclose(pipe) == 0;
}

// Whether the body of the kernel whose parameter list opens before `at` calls __syncthreads.
bool usesBarriers(const std::string& text, size_t at) {
    size_t open = text.find('{', at);
    if (open == std::string::npos) return false;
    int depth = 0;
    for (size_t i = open; i < text.size(); ++i) {
        if (text[i] == '{') ++depth;
        else if (text[i] == '}' && --depth == 0) return text.substr(open, i - open).find("__syncthreads") != std::string::npos;
    }
    return false;
}

bool compile(Program& p) {
    std::string runtime = folderOfThisLibrary() + "/runtime.h";
    char folder[] = "/tmp/flows-emu-nvrtc-XXXXXX";
    if (!mkdtemp(folder)) { p.log = "cannot create a temporary folder"; return false; }
    std::string dir = folder, source = dir + "/kernels.cpp", scanned = dir + "/scan.ii", object = dir + "/kernels.so";
    {
        std::ofstream out(source);
        out << "#include \"" << runtime << "\"\n#line 1 \"" << p.name << "\"\n" << p.source << "\n";
    }
    const std::string gxx = "g++ -std=c++17 -w -x c++ ";
    bool ok = run(gxx + "-E -DFLOWS_EMU_SCAN " + source + " -o " + scanned, p.log);
    if (ok) {
        std::string text = readFile(scanned);
        std::regex kernel("extern\\s+\"C\"\\s+FLOWS_KERNEL_MARK\\s+void\\s+(\\w+)\\s*\\(");
        std::ofstream out(source, std::ios::app);
        for (auto it = std::sregex_iterator(text.begin(), text.end(), kernel); it != std::sregex_iterator(); ++it) {
            std::string name = (*it)[1];
            bool barriers = usesBarriers(text, it->position(0) + it->length(0));
            out << "FLOWS_EXPORT void flows_emu_kernel_" << name << "(void** a) { flows_emu::invoke(" << name << ", a); }\n"
                << "FLOWS_EXPORT const int flows_emu_barriers_" << name << " = " << (barriers ? 1 : 0) << ";\n";
        }
    }
    ok = ok && run(gxx + "-O2 -shared -fPIC -fvisibility=hidden -Wl,-Bsymbolic " + source + " -o " + object, p.log);
    if (ok) {
        // the driver gets only a pointer: a header carries the size (see driver.cpp)
        std::string bytes = readFile(object);
        uint64_t size = bytes.size();
        p.image.assign(ImageMagic, ImageMagic + 8);
        p.image.insert(p.image.end(), reinterpret_cast<const char*>(&size), reinterpret_cast<const char*>(&size) + 8);
        p.image.insert(p.image.end(), bytes.begin(), bytes.end());
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return ok;
}

} // namespace

EXPORT int nvrtcVersion(int* major, int* minor) {
    // "0.N": N changes with runtime.h, so cached images of an older emulator are never reused
    *major = 0;
    *minor = FLOWS_EMU_STAMP;
    return 0;
}

EXPORT int nvrtcGetNumSupportedArchs(int* n) { *n = 2; return 0; }

EXPORT int nvrtcGetSupportedArchs(int* archs) { archs[0] = 80; archs[1] = 90; return 0; }

EXPORT int nvrtcCreateProgram(void** program, const char* source, const char* name, int headers, const char* const*, const char* const*) {
    if (headers != 0) return 3; // NVRTC_ERROR_INVALID_INPUT: Flows passes no headers
    *program = new Program{ source, name ? name : "default_program", "", {} };
    return 0;
}

EXPORT int nvrtcCompileProgram(void* program, int, const char* const*) {
    return compile(*static_cast<Program*>(program)) ? 0 : 6; // NVRTC_ERROR_COMPILATION
}

EXPORT int nvrtcGetProgramLogSize(void* program, size_t* size) { *size = static_cast<Program*>(program)->log.size() + 1; return 0; }

EXPORT int nvrtcGetProgramLog(void* program, char* log) {
    const std::string& text = static_cast<Program*>(program)->log;
    std::memcpy(log, text.c_str(), text.size() + 1);
    return 0;
}

EXPORT int nvrtcGetCUBINSize(void* program, size_t* size) { *size = static_cast<Program*>(program)->image.size(); return 0; }

EXPORT int nvrtcGetCUBIN(void* program, char* cubin) {
    const auto& image = static_cast<Program*>(program)->image;
    std::memcpy(cubin, image.data(), image.size());
    return 0;
}

EXPORT int nvrtcDestroyProgram(void** program) {
    delete static_cast<Program*>(*program);
    *program = nullptr;
    return 0;
}
