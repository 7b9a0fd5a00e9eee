/// Rebuilding a model's parts from a manifest: base distributions by name, layers under an
/// allocation budget with every failure said about the part, and the saved tensors put back.
module internal Flows.Io.Rebuild

open System
open System.IO
open Flows
open Flows.Distributions
open Flows.Tensors
open Flows.Io.Manifest

/// A base distribution rebuilt from its name and settings (its parameters are then replaced).
let baseDistribution (name: string) (dtype: Dtype) (s: Settings) =
    match name with
    | "standard-normal" -> Distribution.standardNormal (Settings.ints "event" s) dtype
    | "diagonal-normal" -> Distribution.diagonalNormal (Settings.ints "event" s) dtype
    | "uniform-box" -> Distribution.uniformBox (Settings.ints "event" s) (Settings.float "low" s) (Settings.float "high" s) dtype
    // the locations are saved weights; any start point of the right shape will do
    | "gaussian-mixture" -> Distribution.gaussianMixture (Tensor.zeros([| Settings.int "components" s; Settings.int "dim" s |], dtype)) 1.0
    | other -> invalidArg "base" $"unknown base distribution '{other}'; have: standard-normal, diagonal-normal, uniform-box, gaussian-mixture"

/// Puts the saved tensors named `prefix.*` into `expected` (the rebuilt one's names and shapes),
/// noting each one taken in `used`; a missing tensor or one of another shape or dtype is named.
let restore (file: string) (saved: Collections.Generic.Dictionary<string, Tensor>) (used: Collections.Generic.HashSet<string>) (owner: string) (prefix: string) (expected: Params) =
    expected.WithValues(
        Array.zip expected.Names expected.Values
        |> Array.map (fun (n, fresh) ->
            let key = $"{prefix}.{n}"
            match saved.TryGetValue key with
            | false, _ -> corrupt file $"missing tensor '{key}' of {owner}"
            | true, t ->
                if t.shape <> fresh.shape then corrupt file $"tensor '{key}' of {owner} has shape {Shape.show t.shape}; expected {Shape.show fresh.shape}"
                if t.dtype <> fresh.dtype then corrupt file $"tensor '{key}' of {owner} has dtype {t.dtype}; expected {fresh.dtype}"
                used.Add key |> ignore
                t))

/// Runs the rebuild of `what` (under the caller's allocation budget); whatever goes wrong is
/// reported as InvalidDataException about `what` in `file`.
let rebuilding (file: string) (what: string) (f: unit -> 'a) =
    try f ()
    with
    | :? InvalidDataException -> reraise ()
    | :? AllocationBudgetException as e -> corrupt file $"{what} cannot be rebuilt: its settings ask for more memory than the weights file holds ({e.Message})"
    | e when not (e :? OperationCanceledException) -> corrupt file $"{what} cannot be rebuilt: {e.Message}"
