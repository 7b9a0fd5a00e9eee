namespace Flows.Tensors

/// A GPU's memory as its caching allocator sees it, in bytes (block sizes after rounding).
type DeviceMemoryStats =
    { /// Held by live tensors (and by dropped ones the GC has not finalised yet).
      InUse: int64
      /// Kept for reuse, not returned to the driver.
      Cached: int64
      /// Handed out since the device was opened, reused blocks included.
      Rented: int64 }

namespace Flows.Tensors.Backend

open Flows.Tensors

/// Optional interface of a backend whose device memory goes through a caching allocator: what
/// `Memory.device` reports. Backends of managed memory do not implement it.
type IDeviceMemory =
    /// The allocator's figures now.
    abstract Stats: unit -> DeviceMemoryStats

/// Optional interface of storage that can hand its memory back before the GC finalises it.
[<AllowNullLiteral>]
type IReleasableStorage =
    /// Whether `Release` has run.
    abstract IsReleased: bool
    /// The memory held.
    abstract Bytes: int64
    /// Returns the memory now (once; later calls do nothing).
    abstract Release: unit -> unit
