namespace Flows.Training

open System
open Flows

/// How big a default flow a table supports, and how it is trained: chosen from the number of
/// training rows (and columns), so a 150-row table gets a small, strongly regularised flow and a
/// 100,000-row table a deep, wide one. Every field can be overridden.
type TableCapacity =
    { /// Spline coupling layers (each after a fixed random permutation).
      Layers: int
      /// Units in each of the two hidden layers of every conditioner.
      Hidden: int
      /// Rational-quadratic spline bins.
      Bins: int
      /// The splines act on [−TailBound, TailBound] of whitened columns, the identity outside.
      TailBound: float
      /// AdamW's decoupled weight decay: pulls the flow back towards the identity, that is towards the
      /// Gaussian the flow starts from; strong on few rows.
      WeightDecay: float
      /// Rows per step.
      BatchSize: int }

/// The capacity rules (documented in the README and `flows train --help`).
[<RequireQualifiedAccess>]
module TableCapacity =

    let private roundTo (step: int) (x: float) = max step (int (Math.Round(x / float step)) * step)

    /// The capacity for `rows` training rows of `columns` columns:
    /// layers = clamp(round(log2(rows / 50)), 2, 8); hidden = clamp(√rows rounded to 8, 16, 256);
    /// bins = 4 below 1,000 rows, 8 below 50,000, else 10; tail bound 4 (whitened units);
    /// weight decay = clamp(20 / rows, 1e-4, 0.1); batch = clamp(rows / 8, 16, 256), 512 from 50,000 rows.
    let forTable (rows: int) (columns: int) =
        Guard.positive (nameof rows) rows
        Guard.positive (nameof columns) columns
        let n = float rows
        { Layers = Math.Clamp(int (Math.Round(Math.Log2(n / 50.0))), 2, 8)
          Hidden = Math.Clamp(roundTo 8 (sqrt n), 16, 256)
          Bins = (if rows < 1000 then 4 elif rows < 50000 then 8 else 10)
          TailBound = 4.0
          WeightDecay = Math.Clamp(20.0 / n, 1e-4, 0.1)
          BatchSize = (if rows >= 50000 then 512 else Math.Clamp(rows / 8, 16, 256)) }
