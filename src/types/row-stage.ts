/**
 * Where a row that could not be embedded failed, as the errors file's `stage` column says:
 * - `read`: its bytes or cell could not be read from the source (missing file, bad cell, too large);
 * - `decode`: its bytes are not an image the decoder can read;
 * - `input`: its values cannot go into the model (NaN or Inf in a tensor row);
 * - `features`: the model gave NaN or Inf features for it.
 */
export type RowStage = 'read' | 'decode' | 'input' | 'features';
