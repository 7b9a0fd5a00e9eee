namespace Flows.Tensors

open System.Collections.Generic

/// How many differentiation levels are recording on this thread (`Ad` opens and closes them).
[<Sealed; AbstractClass>]
type internal Levels private () =
    [<System.ThreadStatic; DefaultValue>]
    static val mutable private open': int

    /// Levels whose function is still running on this thread.
    static member Open
        with get () = Levels.open'
        and set (value: int) = Levels.open' <- value

/// The reverse sweep of one differentiation level.
module internal Reverse =

    /// Propagates adjoints from `outputs` (seeded with `seeds`) back through the nodes of level
    /// `tag`, in reverse topological order found with an explicit stack (ODE solves record graphs
    /// far deeper than the call stack allows), and returns the adjoints of `inputs`.
    /// When no level is recording, adjoint arrays this sweep rented are returned to the pool as soon
    /// as no adjoint entry shares their storage: only constant adjoints from nodes whose
    /// contributions were all constants, so no graph can have captured them.
    let sweep (tag: int) (outputs: Tensor[]) (seeds: Tensor[]) (inputs: Tensor[]) : Tensor[] =
        let order = List<Tensor>()
        let visited = HashSet<int64>()
        let stack = Stack<struct (Tensor * bool)>()
        for o in outputs do
            if o.Tag = tag then stack.Push(struct (o, false))
        while stack.Count > 0 do
            let struct (t, expanded) = stack.Pop()
            if expanded then order.Add t
            elif visited.Add t.Node.Id then
                stack.Push(struct (t, true))
                for p in t.Node.Parents do
                    if not (visited.Contains p.Node.Id) then stack.Push(struct (p, false))
        let keep = HashSet<int64>(inputs |> Seq.filter (fun x -> x.Tag = tag) |> Seq.map _.Node.Id)
        let adjoints = Dictionary<int64, Tensor>()
        let recycling = Levels.Open = 0 && Backend.Cpu.BufferPool.BeginRecording()
        // how many adjoint entries hold each storage, for recycling
        let holders = Dictionary<obj, int>(HashIdentity.Reference)
        let hold (a: Tensor) =
            if recycling then
                let s = a.Raw.Storage
                holders[s] <- (match holders.TryGetValue s with | true, n -> n + 1 | _ -> 1)
        // drops one hold on a's storage; returns it to the pool when none is left and `free`
        let release (free: bool) (a: Tensor) =
            if recycling then
                let s = a.Raw.Storage
                let left =
                    match holders.TryGetValue s with
                    | true, n when n > 1 ->
                        holders[s] <- n - 1
                        n - 1
                    | true, _ ->
                        holders.Remove s |> ignore
                        0
                    | _ -> 0
                if left = 0 && free && a.isConst then Backend.Cpu.BufferPool.Return s
        let add (t: Tensor) (a: Tensor) =
            match adjoints.TryGetValue t.Node.Id with
            | true, existing ->
                let sum = existing + a
                adjoints[t.Node.Id] <- sum
                hold sum
                release true existing
                if not (holders.ContainsKey a.Raw.Storage) then release true a
            | _ ->
                adjoints[t.Node.Id] <- a
                hold a
        try
            Array.iter2 (fun (o: Tensor) s -> if o.Tag = tag then add o s) outputs seeds
            for i in order.Count - 1 .. -1 .. 0 do
                let t = order[i]
                match adjoints.TryGetValue t.Node.Id with
                | true, adj when t.Node.Parents.Length > 0 ->
                    let contributions = t.Node.Backward adj
                    Array.iter2 add t.Node.Parents contributions
                    if not (keep.Contains t.Node.Id) then
                        adjoints.Remove t.Node.Id |> ignore
                        release (contributions |> Array.forall (fun c -> c.isConst)) adj
                | _ -> ()
            inputs
            |> Array.map (fun x ->
                match (if x.Tag = tag then adjoints.TryGetValue x.Node.Id else (false, null)) with
                | true, a -> a
                | _ -> Tensor.ZerosLike x)
        finally
            if recycling then Backend.Cpu.BufferPool.EndRecording()
