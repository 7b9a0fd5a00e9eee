namespace Flows.Tensors.Backend.Cuda

open System.IO

/// One CUDA C translation unit.
type KernelSource =
    { /// The file name (elementwise.cu, ...), also NVRTC's program name.
      Name: string
      /// The full text compiled: the shared header followed by the file.
      Text: string }

/// The kernel sources, embedded in the assembly as resources (Backend/Cuda/Kernels/*.cu).
[<RequireQualifiedAccess>]
module internal KernelSources =

    /// Every kernel file, in the order modules are loaded.
    let names = [ "elementwise.cu"; "reduce.cu"; "indexing.cu"; "linalg.cu"; "random.cu"; "fused.cu" ]

    let private read (name: string) =
        let assembly = typeof<KernelSource>.Assembly
        use stream = assembly.GetManifestResourceStream("Flows.Cuda." + name)
        if isNull stream then invalidOp $"kernel source {name} is not embedded in {assembly.GetName().Name}"
        use reader = new StreamReader(stream)
        reader.ReadToEnd()

    let private header = lazy (read "common.cuh")

    /// A source with the shared header (common.cuh) in front; errors still cite `name`'s own lines.
    let withHeader (name: string) (text: string) =
        { Name = name; Text = header.Force() + "\n#line 1 \"" + name + "\"\n" + text }

    /// The sources, header prepended, read once.
    let all : Lazy<KernelSource list> = lazy (names |> List.map (fun name -> withHeader name (read name)))
