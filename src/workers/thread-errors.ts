/** Marks errors that come from loading the model (configuration, not data): not worth retrying. */
export const MODEL_LOAD_FAILED = 'model load failed:';
