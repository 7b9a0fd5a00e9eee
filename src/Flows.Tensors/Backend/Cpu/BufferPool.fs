namespace Flows.Tensors.Backend.Cpu

open System
open System.Collections.Generic

/// Reuse of large CPU arrays, per thread. A training step allocates megabytes of activations and
/// adjoints; fresh gen-0 memory costs clearing and collections (half of a two-moons step). The
/// reverse sweep returns adjoint arrays it rented itself once nothing can reach them any more
/// (`Tensor.Reverse` keeps the books); every kernel that rents writes all of the array.
[<Sealed; AbstractClass>]
type internal BufferPool private () =

    /// Arrays below this many elements are left to the GC. A [512, 1] column is pooled: at 1,024 the
    /// two-moons step left 351 KiB of garbage a step and a gen-0 collection every 12 steps; at 64,
    /// 211 KiB and one every 18 (bench step).
    static member Threshold = 64

    // most arrays kept per (element type, length): bounds the memory a pool can hold. A pool only
    // takes back what one scope rented, so it holds at most a step's working set per size; an 8 × 256
    // coupling flow at batch 4096 rents 48 activations of one size a step, and at 32 a third of them
    // were fresh pages every step.
    static member private Depth = 256

    [<ThreadStatic; DefaultValue>]
    static val mutable private free: Dictionary<struct (Type * int), Stack<Array>>

    // a list, not a hash set: a few dozen arrays a step, and hashing an array the first time
    // costs more than scanning them
    [<ThreadStatic; DefaultValue>]
    static val mutable private recorded: List<Array>

    [<ThreadStatic; DefaultValue>]
    static val mutable private disabled: bool

    /// Whether this thread recycles (on unless switched off for a scope by `Memory.withoutRecycling`).
    static member Enabled
        with get () = not BufferPool.disabled
        and set (value: bool) = BufferPool.disabled <- not value

    /// An array of n elements with arbitrary contents: the caller overwrites all of it.
    static member Rent<'T>(n: int) : 'T[] =
        let fromPool =
            if n >= BufferPool.Threshold && not (isNull BufferPool.free) then
                match BufferPool.free.TryGetValue(struct (typeof<'T>, n)) with
                | true, stack when stack.Count > 0 -> stack.Pop() :?> 'T[]
                | _ -> null
            else null
        // zeroCreate takes the JIT's inline allocation path; the "uninitialized" API measured slower here
        let array = if isNull fromPool then Array.zeroCreate<'T> n else fromPool
        if n >= BufferPool.Threshold && not (isNull BufferPool.recorded) then BufferPool.recorded.Add array
        array

    /// Starts noting the arrays this thread rents (a reverse sweep is starting); false when off.
    static member BeginRecording() =
        if BufferPool.disabled || not (isNull BufferPool.recorded) then false
        else
            BufferPool.recorded <- List<Array>()
            true

    /// Stops noting rents.
    static member EndRecording() = BufferPool.recorded <- null

    /// Runs `f` recording its rents, then takes back every array rented except those `kept` names
    /// of its result (null: keep them all, as when the result still carries a recording level).
    /// Scopes nest: what an inner scope keeps joins the recording around it, which takes it back
    /// in turn when it ends; `f` alone when recycling is off.
    static member Reusing(f: unit -> 'a, kept: 'a -> obj[]) : 'a =
        if BufferPool.disabled then f ()
        else
            let outer = BufferPool.recorded
            let inner = List<Array>()
            BufferPool.recorded <- inner
            let mutable result = None
            try
                let r = f ()
                result <- Some r
                r
            finally
                BufferPool.recorded <- outer
                let keep = match result with Some r -> kept r | None -> null
                for array in inner do
                    if not (isNull keep) && not (keep |> Array.exists (fun k -> obj.ReferenceEquals(k, array))) then BufferPool.Push array
                    elif not (isNull outer) then outer.Add array

    // removes an array from the current recording; false when it was not rented there
    static member private Forget(array: Array) =
        let rented = BufferPool.recorded
        let mutable i = rented.Count - 1
        while i >= 0 && not (obj.ReferenceEquals(rented[i], array)) do
            i <- i - 1
        if i < 0 then false
        else
            rented[i] <- rented[rented.Count - 1]
            rented.RemoveAt(rented.Count - 1)
            true

    static member private Push(array: Array) =
        if isNull BufferPool.free then BufferPool.free <- Dictionary()
        let key = struct (array.GetType().GetElementType(), array.Length)
        let stack =
            match BufferPool.free.TryGetValue key with
            | true, s -> s
            | _ ->
                let s = Stack<Array>()
                BufferPool.free[key] <- s
                s
        if stack.Count < BufferPool.Depth then stack.Push array

    /// Takes back an array rented during the current recording; anything else is ignored.
    static member Return(storage: obj) =
        match storage with
        | :? Array as array when not (isNull BufferPool.recorded) && BufferPool.Forget array -> BufferPool.Push array
        | _ -> ()

    /// Takes an array that nothing will read again into this thread's pool, rented or not (large
    /// arrays only; anything else is ignored).
    static member Donate(storage: obj) =
        match storage with
        | :? Array as array when BufferPool.Enabled && array.Length >= BufferPool.Threshold && isNull BufferPool.recorded -> BufferPool.Push array
        | :? Array as array when BufferPool.Enabled && array.Length >= BufferPool.Threshold && BufferPool.Forget array -> BufferPool.Push array
        | _ -> ()
