namespace Flows.CSharp;

/// <summary>Rows mapped through a model, with log|det J| of the map for every row.</summary>
/// <param name="Rows">The mapped rows.</param>
/// <param name="LogDeterminant">log|det J| of the map at each input row.</param>
public sealed record MappedRows(float[,] Rows, float[] LogDeterminant);
