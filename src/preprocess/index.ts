export { decodeImage, decodeImageInto, decodeImagesInto, decodedLength, MAX_INPUT_PIXELS } from './image-decode.js';
export type { DecodeFailure } from './image-decode.js';
export { TextTokenizer, TokenizerFileError, textInputs } from './tokenize.js';
export type { TokenizedBatch } from './tokenize.js';
