namespace Flows.Continuous

open Flows
open Flows.Tensors

/// The shape of a Galerkin CNF.
type GalerkinCnfOptions =
    { /// The depth basis every weight is expanded in.
      Basis: GalerkinBasis
      /// Hidden layer sizes of the field (D (+1) → hidden… → D, tanh between layers).
      Hidden: int list
      /// Whether t is also an input column ([z; t]) besides moving the weights.
      TimeInput: bool
      /// The end time T: forward integrates over [0, T], the basis lives on [0, T].
      EndTime: float
      /// Dopri5's Atol = Rtol (float32 solves use at least 1e-6, 1e-5).
      Tolerance: float }

/// A CNF whose dynamics are a Galerkin neural ODE field (`Galerkin.field`; Massaroli et al. 2020),
/// forward base → data over [0, T], log|det| = ∫ tr(∂f/∂z) dt by the exact trace.
[<RequireQualifiedAccess>]
module GalerkinCnf =

    /// Fourier basis with 2 modes, hidden [16], input z only, T = 1, tolerance 1e-8.
    let defaults = { Basis = GalerkinBasis.Fourier 2; Hidden = [ 16 ]; TimeInput = false; EndTime = 1.0; Tolerance = 1e-8 }

    /// A Galerkin CNF on rows of dimension `dim`.
    let createWith (options: GalerkinCnfOptions) (gen: Generator) (dtype: Dtype) (dim: int) =
        Cnf.checkOptions dim options.Tolerance options.EndTime
        let settings =
            Settings.ofList
                [ "dim", Setting.Int dim
                  "basis", Setting.Text(GalerkinBasis.name options.Basis)
                  "hidden", Setting.Ints(Array.ofList options.Hidden)
                  "timeInput", Setting.Int(if options.TimeInput then 1 else 0)
                  "time", Setting.Float options.EndTime
                  "tolerance", Setting.Float options.Tolerance ]
        let field = Galerkin.field options.Basis options.EndTime
        let side = Cnf.side CnfTrace.Exact CnfGradient.Backprop options.Tolerance Ode.ErrorMeasure.Max None field
        Bijector.create "cnf-galerkin" settings [| dim |] (Galerkin.create gen dtype options.Basis dim options.Hidden options.TimeInput)
            (side 0.0 options.EndTime) (side options.EndTime 0.0)

    /// Rebuilds from settings.
    let build (dtype: Dtype) (settings: Settings) =
        let options =
            { Basis = GalerkinBasis.parse (Settings.text "basis" settings)
              Hidden = List.ofArray (Settings.ints "hidden" settings)
              TimeInput = Settings.int "timeInput" settings <> 0
              EndTime = Settings.float "time" settings
              Tolerance = Settings.float "tolerance" settings }
        createWith options (Generator 0UL) dtype (Settings.int "dim" settings)

    // The catalogue's layer: one Fourier mode, smooth in t, so Dopri5 takes few steps.
    let private catalogueOptions = { defaults with Basis = GalerkinBasis.Fourier 1; Hidden = [ 8 ] }

    /// The catalogue entry: exact trace, Dopri5 at 1e-8.
    [<CatalogueEntry>]
    let entry =
        { Entry.exact "cnf-galerkin" build (createWith catalogueOptions) with
            InverseKind = InverseKind.Iterative catalogueOptions.Tolerance }
