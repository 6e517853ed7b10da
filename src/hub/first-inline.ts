// A keyed collection that most often holds one value: the first is kept in a field, and a Map is made
// only from the second on. An empty Map with its table costs about 200 bytes, which adds up per
// connection (a session's subscriptions) and per channel (the hub's local subscribers), where one
// value is the common case; a lookup in a collection of one is then a comparison.

/** Values by key (each value knows its key), in the order they were added. */
export abstract class FirstInline<K, V> {
  private one: V | undefined = undefined;
  private many: Map<K, V> | undefined = undefined;

  /** The key of a value. */
  protected abstract keyOf(value: V): K;

  /** The value, when it is the only one and kept in the field (no Map); else undefined. */
  get inline(): V | undefined {
    return this.one;
  }

  /** The Map, once a second value was added; else undefined. */
  get map(): ReadonlyMap<K, V> | undefined {
    return this.many;
  }

  get size(): number {
    return this.many ? this.many.size : this.one !== undefined ? 1 : 0;
  }

  get(key: K): V | undefined {
    if (this.many) return this.many.get(key);
    const one = this.one;
    return one !== undefined && this.keyOf(one) === key ? one : undefined;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** Adds `value`, or replaces the value of its key. */
  set(value: V): void {
    const one = this.one;
    if (this.many) {
      this.many.set(this.keyOf(value), value);
    } else if (one === undefined || this.keyOf(one) === this.keyOf(value)) {
      this.one = value;
    } else {
      this.many = new Map([
        [this.keyOf(one), one],
        [this.keyOf(value), value],
      ]);
      this.one = undefined;
    }
  }

  delete(key: K): boolean {
    if (this.many) return this.many.delete(key);
    if (this.one === undefined || this.keyOf(this.one) !== key) return false;
    this.one = undefined;
    return true;
  }

  /** A snapshot of the values, safe to iterate while they change. */
  list(): V[] {
    if (this.many) return [...this.many.values()];
    return this.one !== undefined ? [this.one] : [];
  }
}
