// The emulator's "cubin": 8 magic bytes, the shared object's size (8 bytes, little-endian), the object.
#pragma once
#include <cstdint>

static const char ImageMagic[8] = { 'F', 'L', 'O', 'W', 'S', 'E', 'M', 'U' };
