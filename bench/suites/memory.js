export async function memorySuite() { return []; }
