namespace Flows.Tensors

open System

/// Raised when a computation asks for more tensor memory than the budget it runs under.
type AllocationBudgetException(message: string) =
    inherit Exception(message)

/// A per-thread cap on the tensor memory a computation may create, for code that sizes tensors
/// from untrusted input (a model file's settings): the request is refused before its storage is
/// allocated, so a hostile "hidden = 2,000,000,000" costs microseconds instead of gigabytes.
[<Sealed; AbstractClass>]
type AllocationBudget private () =

    // bytes still allowed on this thread; negative when no budget is active
    [<ThreadStatic; DefaultValue>]
    static val mutable private remaining: int64

    [<ThreadStatic; DefaultValue>]
    static val mutable private active: bool

    // element count of a shape in int64, saturating instead of overflowing
    static member private Elements(shape: int[]) =
        let mutable n = 1L
        for d in shape do
            n <- if d <= 0 then 0L elif n > Int64.MaxValue / int64 d then Int64.MaxValue else n * int64 d
        n

    /// Runs `f` allowing at most `bytes` of tensor storage to be created on this thread in all
    /// (nested budgets take the smaller); AllocationBudgetException past that.
    static member Within(bytes: int64, f: unit -> 'a) : 'a =
        let wasActive, wasRemaining = AllocationBudget.active, AllocationBudget.remaining
        AllocationBudget.remaining <- (if wasActive then min wasRemaining bytes else bytes)
        AllocationBudget.active <- true
        try f ()
        finally
            let used = (if wasActive then min wasRemaining bytes else bytes) - AllocationBudget.remaining
            AllocationBudget.active <- wasActive
            AllocationBudget.remaining <- wasRemaining - (if wasActive then used else 0L)

    static member private Bytes(shape: int[], dtype: Dtype) =
        let elements = AllocationBudget.Elements shape
        if elements > Int64.MaxValue / 8L then Int64.MaxValue else elements * int64 dtype.Size

    /// Refuses a tensor of `shape` and `dtype` that the active budget cannot hold (none: anything
    /// goes); backends call it before they allocate storage from a shape.
    static member Check(shape: int[], dtype: Dtype) =
        if AllocationBudget.active then
            let bytes = AllocationBudget.Bytes(shape, dtype)
            if bytes > AllocationBudget.remaining then
                raise (AllocationBudgetException $"a {dtype} tensor of shape {Shape.show shape} needs {bytes} bytes; only {max AllocationBudget.remaining 0L} bytes of the allocation budget are left")

    /// Takes a tensor of `shape` and `dtype` out of the active budget; every raw tensor is charged
    /// when it is made (a reshape too: the budget bounds work, not only memory).
    static member Charge(shape: int[], dtype: Dtype) =
        if AllocationBudget.active then
            AllocationBudget.Check(shape, dtype)
            AllocationBudget.remaining <- AllocationBudget.remaining - AllocationBudget.Bytes(shape, dtype)
