/**
 * Bad input to a search, a map or a run page: a run that is not there or not committed, an id
 * or tap column the run does not have, a query the run's model cannot embed. The CLI exits 2 on
 * it; `choices` lists what would have been valid, when there is such a list.
 */
export class SearchInputError extends Error {
  override readonly name = 'SearchInputError';
  constructor(
    message: string,
    readonly choices: string[] = [],
  ) {
    super(message);
  }
}
