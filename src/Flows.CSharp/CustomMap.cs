namespace Flows.CSharp;

/// <summary>One direction of a <see cref="CustomBijector"/>: the mapped rows and log|det J| of the map,
/// written with the differentiable <see cref="Rows"/> operations so that training reaches the parameters.</summary>
/// <param name="parameters">The layer's learnable parameters, each one value per column.</param>
/// <param name="rows">The input rows.</param>
public delegate MapResult CustomMap(CustomParameters parameters, Rows rows);

/// <summary>What a <see cref="CustomMap"/> returns.</summary>
/// <param name="Output">The mapped rows, of the input's shape.</param>
/// <param name="LogDeterminant">log|det J| of the map: one value per row (as <see cref="Rows.SumColumns"/>
/// gives), or element-wise log-derivatives of the input's shape or of a parameter's (one value per column),
/// which the layer sums over each row.</param>
public sealed record MapResult(Rows Output, Rows LogDeterminant);
