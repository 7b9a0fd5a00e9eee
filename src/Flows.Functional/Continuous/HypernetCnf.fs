namespace Flows.Continuous

open Flows
open Flows.Tensors

/// The shape of a hypernetwork CNF.
type HypernetCnfOptions =
    { /// Hidden units of the dynamics layer (the hypernetwork outputs its weights).
      Width: int
      /// Hidden layer sizes of the hypernetwork (1 → hidden… → width·(2D + 2)).
      Hidden: int list
      /// The end time T: forward integrates over [0, T].
      EndTime: float
      /// Dopri5's Atol = Rtol (float32 solves use at least 1e-6, 1e-5).
      Tolerance: float }

/// A CNF whose dynamics come from a hypernetwork of t (`Hypernet.field`; Chen et al. 2018, §4),
/// forward base → data over [0, T], log|det| = ∫ tr(∂f/∂z) dt by the exact trace.
[<RequireQualifiedAccess>]
module HypernetCnf =

    /// Width 8, hypernetwork hidden [16], T = 1, tolerance 1e-8.
    let defaults = { Width = 8; Hidden = [ 16 ]; EndTime = 1.0; Tolerance = 1e-8 }

    /// A hypernetwork CNF on rows of dimension `dim`.
    let createWith (options: HypernetCnfOptions) (gen: Generator) (dtype: Dtype) (dim: int) =
        Cnf.checkOptions dim options.Tolerance options.EndTime
        let settings =
            Settings.ofList
                [ "dim", Setting.Int dim
                  "width", Setting.Int options.Width
                  "hidden", Setting.Ints(Array.ofList options.Hidden)
                  "time", Setting.Float options.EndTime
                  "tolerance", Setting.Float options.Tolerance ]
        let side = Cnf.side CnfTrace.Exact CnfGradient.Backprop options.Tolerance Ode.ErrorMeasure.Max None Hypernet.field
        Bijector.create "cnf-hypernet" settings [| dim |] (Hypernet.create gen dtype dim options.Width options.Hidden)
            (side 0.0 options.EndTime) (side options.EndTime 0.0)

    /// Rebuilds from settings.
    let build (dtype: Dtype) (settings: Settings) =
        let options =
            { Width = Settings.int "width" settings
              Hidden = List.ofArray (Settings.ints "hidden" settings)
              EndTime = Settings.float "time" settings
              Tolerance = Settings.float "tolerance" settings }
        createWith options (Generator 0UL) dtype (Settings.int "dim" settings)

    // The catalogue's layer: small, and tight enough that log-dets match the autodiff Jacobian.
    let private catalogueOptions = { defaults with Width = 4; Hidden = [ 8 ] }

    /// The catalogue entry: exact trace, Dopri5 at 1e-8.
    [<CatalogueEntry>]
    let entry =
        { Entry.exact "cnf-hypernet" build (createWith catalogueOptions) with
            InverseKind = InverseKind.Iterative catalogueOptions.Tolerance }
