export async function pytorchSuite() { return []; }
