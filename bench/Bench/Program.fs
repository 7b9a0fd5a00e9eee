/// Bench entry point: `dotnet run -c Release --project bench/Bench -- [section...]`; no section runs all.
module Program

// One line per section: name on the command line, and what it runs.
let private sections: (string * (unit -> unit)) list =
    [ "gemm", GemmBench.run; "mlp", MlpBench.run; "ops", OpsBench.run; "splines", SplineBench.run; "cnf", CnfBench.run; "adjoint-memory", AdjointMemoryBench.run
      "tables", TablesBench.run; "distributed", DistributedBench.run; "peer", PeerBench.run; "peer-flows", PeerBench.runFlows; "peer-cnf", PeerBench.runCnf
      "peer-scaling", PeerScalingBench.run; "logprob", LogProbBench.run; "step", StepBench.run ]

[<EntryPoint>]
let main argv =
    // one rank of the distributed section, as that section launches it under mpirun
    if argv = [| "distributed-rank" |] then DistributedBench.rank () else
    let unknown = argv |> Array.filter (fun name -> not (List.exists (fst >> (=) name) sections))
    if unknown.Length > 0 then
        eprintfn "unknown section(s): %s; known: %s" (String.concat ", " unknown) (sections |> List.map fst |> String.concat ", ")
        2
    else
        Timing.printJitSettings ()
        let chosen = if argv.Length = 0 then sections else sections |> List.filter (fun (name, _) -> Array.contains name argv)
        for _, run in chosen do
            run ()
        0
