// GCC 13 moved iostream start-up into libstdc++ and has objects call this; GCC 12's library starts
// iostreams through ios_base::Init objects instead, which this makes.
#include <ios>
namespace std { void ios_base_library_init() { static ios_base::Init init; } }
