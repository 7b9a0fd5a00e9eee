namespace Flows.Tensors

/// Hyperparameters of one fused Adam/AdamW update (`Tensor.adamStep`).
type AdamConfig =
    { LearningRate: float
      Beta1: float
      Beta2: float
      Eps: float
      WeightDecay: float
      /// AdamW: decay the weights directly instead of adding the decay to the gradient.
      Decoupled: bool
      /// The step number, from 1 (bias correction).
      Step: int }
