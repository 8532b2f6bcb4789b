const MAX_LISTED = 80;

/** A tap names a layer (or graph node) the model does not have. */
export class UnknownLayerError extends Error {
  readonly layer: string;
  readonly choices: string[];

  constructor(layer: string, choices: string[], modelUri?: string) {
    // graph models have hundreds of nodes; past a point the list stops helping and the hint takes over
    const listed = choices.slice(0, MAX_LISTED).join(', ');
    const more =
      choices.length > MAX_LISTED
        ? `, ... (${choices.length - MAX_LISTED} more; \`layertap layers ${modelUri ?? '<model>'}\` lists them all)`
        : '';
    super(`unknown layer '${layer}'; layers are: ${listed}${more}`);
    this.name = 'UnknownLayerError';
    this.layer = layer;
    this.choices = choices;
  }
}
