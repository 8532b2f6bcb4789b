import { nearestNames } from './did-you-mean.js';
import { FieldError } from './errors.js';

/** A name a registry does not hold, with the job field that gave it and the names it does hold. */
export class UnknownNameError extends FieldError {
  override readonly name = 'UnknownNameError';
  constructor(
    /** the job field that named it, e.g. 'source.type' */
    field: string,
    /** the name as given */
    readonly given: string,
    /** every name the registry holds */
    readonly choices: readonly string[],
    /** what a name is called in the message: 'type' gives "unknown type 'x'; types are: ..." */
    noun: string,
  ) {
    const near = nearestNames(given, choices, 1);
    super(field, `unknown ${noun} '${given}'${near.length > 0 ? ` (did you mean '${near.join("' or '")}'?)` : ''}; ${noun}s are: ${choices.join(', ')}`);
  }
}

/**
 * The named entries of one seam (source kinds, sink schemes, part formats, runtimes), in order.
 * A value, not global state: code that needs one is handed it, and `with` makes a new registry
 * instead of changing this one.
 *
 * @example
 * const formats = new Registry('sink.format', 'format', { arrow, parquet });
 * formats.get('parqet'); // throws "sink.format: unknown format 'parqet' (did you mean 'parquet'?); formats are: arrow, parquet"
 */
export class Registry<E> {
  private readonly entries: ReadonlyMap<string, E>;

  constructor(
    /** the job field whose value names an entry, for errors */
    readonly field: string,
    /** what a name is called in errors ('type', 'format') */
    readonly noun: string,
    entries: Readonly<Record<string, E>> | Iterable<readonly [string, E]>,
  ) {
    this.entries = new Map(Symbol.iterator in entries ? entries : Object.entries(entries));
  }

  /** Every name, in order. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  /** The entry named `name`; an {@link UnknownNameError} (with the nearest names) when there is none. */
  get(name: string): E {
    const entry = this.find(name);
    if (entry === undefined) throw new UnknownNameError(this.field, name, this.names, this.noun);
    return entry;
  }

  /** The entry named `name`, or undefined. */
  find(name: string): E | undefined {
    return this.entries.get(name);
  }

  /** Every [name, entry], in order. */
  list(): Array<[string, E]> {
    return [...this.entries];
  }

  /**
   * A registry with `entry` added under `name` (replacing one of that name). It goes first, so
   * that where entries are tried in order (uris, files) it can claim what the others would take.
   */
  with(name: string, entry: E): Registry<E> {
    return new Registry<E>(this.field, this.noun, [[name, entry] as const, ...this.list().filter(([n]) => n !== name)]);
  }
}
