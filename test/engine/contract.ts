// The engine contract: one suite, run against every engine implementation (memory now; Redis and
// Redis Cluster run the same tests). Each test uses fresh channel names so engines can be shared.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { patternChannel, rawChannel, type ClientInfo, type Engine, type JoinLeave, type Publication, type StreamPosition } from '../../src/engine/engine.js';

/** What the suite needs: a way to make a started engine, and to stop it. */
export interface EngineFactory {
  readonly name: string;
  /** Creates an engine (not started) with the given meta TTL. */
  create(opts: { historyMetaTtlMs: number; idempotentResultTtlMs: number }): Promise<Engine>;
}

interface Delivered {
  channel: string;
  pub: Publication;
  position: StreamPosition;
}

const HISTORY = { size: 10, ttlMs: 60_000 };
const data = (v: unknown) => Buffer.from(JSON.stringify(v));
const text = (p: Publication) => JSON.parse(p.data.toString()) as unknown;

/** Runs the contract against one engine. */
export function engineContract(factory: EngineFactory): void {
  describe(`engine contract: ${factory.name}`, () => {
    let engine: Engine;
    const delivered: Delivered[] = [];
    /** Publications and joins/leaves in the order they arrived, per channel. */
    const events: Array<{ channel: string; what: string }> = [];
    const joins: Array<{ channel: string; kind: JoinLeave; info: ClientInfo }> = [];
    const controls: string[] = [];
    const node = `node-${randomUUID()}`;
    const ch = () => `contract:${randomUUID()}`;
    const waitFor = async (check: () => boolean, what: string) => {
      const end = Date.now() + 5000;
      while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const on = (channel: string) => delivered.filter((d) => d.channel === channel);

    before(async () => {
      engine = await factory.create({ historyMetaTtlMs: 3_600_000, idempotentResultTtlMs: 60_000 });
      await engine.start({
        onPublication: (channel, pub, position) => {
          delivered.push({ channel, pub, position });
          events.push({ channel, what: `pub ${pub.data.toString()}` });
        },
        onJoinLeave: (channel, kind, info) => {
          joins.push({ channel, kind, info });
          events.push({ channel, what: `${kind} ${info.client}` });
        },
        onControl: (message) => controls.push(message.toString()),
        node,
      });
    });
    after(() => engine.close());

    test('control messages: one for every node reaches this one, one for this node too, one for another node does not', async () => {
      const tag = randomUUID();
      await engine.publishControl(Buffer.from(`${tag} other`), 'some-other-node');
      await engine.publishControl(Buffer.from(`${tag} mine`), node);
      await engine.publishControl(Buffer.from(`${tag} all`));
      await waitFor(() => controls.filter((c) => c.startsWith(tag)).length >= 2, 'control messages');
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(controls.filter((c) => c.startsWith(tag)).sort(), [`${tag} all`, `${tag} mine`]);
    });

    test('publish without history: delivered to the subscribed node, offset 0, no epoch', async () => {
      const c = ch();
      await engine.subscribe(c);
      const r = await engine.publish(c, { data: data({ a: 1 }) });
      assert.deepEqual(r.position, { offset: 0, epoch: '' });
      assert.equal(r.suppressed, false);
      await waitFor(() => on(c).length === 1, 'delivery');
      assert.deepEqual(text(on(c)[0]!.pub), { a: 1 });
      assert.equal(on(c)[0]!.pub.offset, 0);
    });

    test('publish with history: offsets start at 1, gap-free, delivered in order with the position', async () => {
      const c = ch();
      await engine.subscribe(c);
      const positions: StreamPosition[] = [];
      for (let i = 0; i < 20; i++) positions.push((await engine.publish(c, { data: data(i), history: HISTORY })).position);
      assert.deepEqual(positions.map((p) => p.offset), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.ok(positions.every((p) => p.epoch === positions[0]!.epoch && p.epoch.length > 0));
      await waitFor(() => on(c).length === 20, '20 deliveries');
      assert.deepEqual(on(c).map((d) => d.pub.offset), positions.map((p) => p.offset));
      assert.deepEqual(on(c).map((d) => text(d.pub)), Array.from({ length: 20 }, (_, i) => i));
      assert.ok(on(c).every((d) => d.position.epoch === positions[0]!.epoch));
    });

    test('concurrent publishes to one channel still get distinct, gap-free offsets', async () => {
      const c = ch();
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => engine.publish(c, { data: data(i), history: { size: 100, ttlMs: 60_000 } })));
      const offsets = results.map((r) => r.position.offset).sort((a, b) => a - b);
      assert.deepEqual(offsets, Array.from({ length: 50 }, (_, i) => i + 1));
    });

    test('history keeps at most `size` newest publications and reports the top position', async () => {
      const c = ch();
      for (let i = 1; i <= 15; i++) await engine.publish(c, { data: data(i), history: HISTORY });
      const h = await engine.history(c, { limit: -1 });
      assert.equal(h.position.offset, 15);
      assert.deepEqual(h.publications.map((p) => p.offset), [6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
      assert.deepEqual(h.publications.map(text), [6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    });

    test('history: limit 0 reads only the position; limit N; since; reverse', async () => {
      const c = ch();
      let epoch = '';
      for (let i = 1; i <= 8; i++) epoch = (await engine.publish(c, { data: data(i), history: HISTORY })).position.epoch;
      const pos = await engine.history(c, { limit: 0 });
      assert.deepEqual(pos.publications, []);
      assert.deepEqual(pos.position, { offset: 8, epoch });
      assert.deepEqual((await engine.history(c, { limit: 3 })).publications.map((p) => p.offset), [1, 2, 3]);
      assert.deepEqual((await engine.history(c, { limit: -1, since: { offset: 5, epoch } })).publications.map((p) => p.offset), [6, 7, 8]);
      assert.deepEqual((await engine.history(c, { limit: 2, since: { offset: 5, epoch } })).publications.map((p) => p.offset), [6, 7]);
      assert.deepEqual((await engine.history(c, { limit: 3, reverse: true })).publications.map((p) => p.offset), [8, 7, 6]);
      assert.deepEqual((await engine.history(c, { limit: -1, reverse: true, since: { offset: 3, epoch } })).publications.map((p) => p.offset), [2, 1]);
      assert.deepEqual((await engine.history(c, { limit: -1, since: { offset: 8, epoch } })).publications, []);
    });

    test('history of an unknown channel: no publications, and the position it reports stays valid for later publishes', async () => {
      const c = ch();
      const h = await engine.history(c, { limit: 0 });
      assert.equal(h.position.offset, 0);
      const r = await engine.publish(c, { data: data('x'), history: HISTORY });
      assert.equal(r.position.offset, 1);
      assert.equal(r.position.epoch, h.position.epoch, 'the epoch seen before the first publish is the stream epoch');
    });

    test('removeHistory drops publications but keeps offset and epoch', async () => {
      const c = ch();
      let last: StreamPosition = { offset: 0, epoch: '' };
      for (let i = 1; i <= 3; i++) last = (await engine.publish(c, { data: data(i), history: HISTORY })).position;
      await engine.removeHistory(c);
      const h = await engine.history(c, { limit: -1 });
      assert.deepEqual(h.publications, []);
      assert.deepEqual(h.position, last);
      assert.equal((await engine.publish(c, { data: data(4), history: HISTORY })).position.offset, 4);
    });

    test('history TTL: publications expire, the position survives (no silent gap)', async () => {
      const c = ch();
      await engine.publish(c, { data: data(1), history: { size: 10, ttlMs: 300 } });
      const before = await engine.history(c, { limit: -1 });
      assert.equal(before.publications.length, 1);
      await new Promise((r) => setTimeout(r, 1200));
      const after = await engine.history(c, { limit: -1 });
      assert.deepEqual(after.publications, []);
      assert.equal(after.position.offset, 1);
      assert.equal(after.position.epoch, before.position.epoch);
    });

    test("a publish's own position TTL (metaTtlMs): the position goes with it, and a new epoch starts; a read's creates one as short", async () => {
      const c = ch();
      const first = await engine.publish(c, { data: data(1), history: { size: 10, ttlMs: 200, metaTtlMs: 400 } });
      const other = ch();
      const otherFirst = await engine.publish(other, { data: data(1), history: { size: 10, ttlMs: 200 } });
      const read = ch();
      const readFirst = await engine.history(read, { limit: 0, metaTtlMs: 400 });
      await new Promise((r) => setTimeout(r, 1200));
      const after = await engine.history(c, { limit: -1 });
      assert.equal(after.position.offset, 0, 'the position is gone with its TTL');
      assert.notEqual(after.position.epoch, first.position.epoch);
      // Without one, the engine's (here far longer) keeps the position.
      assert.deepEqual((await engine.history(other, { limit: 0 })).position, otherFirst.position);
      assert.notEqual((await engine.history(read, { limit: 0 })).position.epoch, readFirst.position.epoch);
    });

    test('idempotency key: a repeated publish is suppressed and returns the first position', async () => {
      const c = ch();
      await engine.subscribe(c);
      const a = await engine.publish(c, { data: data(1), history: HISTORY, idempotencyKey: 'k1' });
      const b = await engine.publish(c, { data: data(1), history: HISTORY, idempotencyKey: 'k1' });
      assert.equal(a.suppressed, false);
      assert.equal(b.suppressed, true);
      assert.deepEqual(b.position, a.position);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(on(c).length, 1);
    });

    test('ping resolves while the engine serves', async () => {
      await engine.ping();
    });

    test('version: a publication not above the last version (in its version epoch) is suppressed, answered with the top', async () => {
      const c = ch();
      await engine.subscribe(c);
      const v = (value: number, epoch = '') => ({ value, epoch });
      const publish = (value: number, epoch = '') => engine.publish(c, { data: data(value), history: HISTORY, version: v(value, epoch) });
      const first = await publish(5);
      assert.equal(first.suppressed, false);
      for (const value of [3, 5]) {
        const r = await publish(value);
        assert.equal(r.suppressed, true, `version ${value} after 5`);
        assert.deepEqual(r.position, first.position, 'a suppressed publish answers the top');
      }
      assert.equal((await publish(6)).position.offset, first.position.offset + 1);
      // Another version epoch starts its own sequence; a publish naming none compares with the last.
      assert.equal((await publish(1, 'b')).suppressed, false);
      assert.equal((await publish(1, 'b')).suppressed, true);
      assert.equal((await publish(1)).suppressed, true);
      assert.equal((await publish(2)).suppressed, false);
      await new Promise((r) => setTimeout(r, 100));
      const kept = (await engine.history(c, { limit: -1 })).publications.map((p) => p.data.toString());
      assert.deepEqual(kept, ['5', '6', '1', '2']);
      assert.deepEqual(on(c).map((d) => d.pub.data.toString()), ['5', '6', '1', '2']);
      // Without history the version is not kept or compared (as Centrifugo: it needs a stream).
      const plain = ch();
      await engine.publish(plain, { data: data(1), version: v(5) });
      assert.equal((await engine.publish(plain, { data: data(1), version: v(5) })).suppressed, false);
    });

    test('publication info and tags round-trip through delivery and history', async () => {
      const c = ch();
      await engine.subscribe(c);
      // The infos are raw JSON, kept as written (a 64-bit integer, a long decimal).
      const info = { user: 'u1', client: 'c1', connInfo: '{"name":"Alice","id":12345678901234567890}', chanInfo: '[1.000000000000000000001]' };
      await engine.publish(c, { data: data('t'), history: HISTORY, info, tags: { k: 'v' } });
      await waitFor(() => on(c).length === 1, 'delivery');
      for (const pub of [on(c)[0]!.pub, (await engine.history(c, { limit: -1 })).publications[0]!]) {
        assert.deepEqual(pub.info, info);
        assert.deepEqual(pub.tags, { k: 'v' });
      }
    });

    test('the delta mark round-trips through delivery and history, with and without history', async () => {
      const c = ch();
      await engine.subscribe(c);
      await engine.publish(c, { data: data('d1'), history: HISTORY, delta: true });
      await engine.publish(c, { data: data('d2'), history: HISTORY });
      await engine.publish(c, { data: data('d3'), delta: true });
      await waitFor(() => on(c).length === 3, 'delivery');
      assert.deepEqual(
        on(c).map((d) => d.pub.delta === true),
        [true, false, true],
      );
      assert.deepEqual(
        (await engine.history(c, { limit: -1 })).publications.map((p) => p.delta === true),
        [true, false],
      );
    });

        test('binary payloads are kept byte for byte', async () => {
      const c = ch();
      const bytes = Buffer.from([0, 255, 1, 254, 10, 13]);
      await engine.publish(c, { data: bytes, history: HISTORY });
      const h = await engine.history(c, { limit: -1 });
      assert.ok(h.publications[0]!.data.equals(bytes));
    });

    test('raw channels: the payload as published (any bytes), no position; patterns match with the concrete channel', async () => {
      const id = randomUUID();
      const raw = rawChannel(`raw.${id}.a`);
      const pattern = patternChannel(`raw.${id}.*`);
      const other = patternChannel(`nomatch.${id}.*`);
      await engine.subscribe(raw);
      await engine.subscribe(pattern);
      await engine.subscribe(other);
      const payload = Buffer.from([0xff, 0x00, 0x0a, 0x41]);
      const r = await engine.publish(raw, { data: payload });
      assert.deepEqual(r.position, { offset: 0, epoch: '' });
      // A count of receivers (in a Redis Cluster, only those on the node that took the PUBLISH).
      assert.equal(typeof r.receivers, 'number');
      await waitFor(() => on(raw).length === 1 && on(pattern).length === 1, 'raw and pattern deliveries');
      assert.ok(on(raw)[0]!.pub.data.equals(payload));
      assert.equal(on(raw)[0]!.pub.offset, 0);
      assert.ok(on(pattern)[0]!.pub.data.equals(payload));
      assert.equal(on(pattern)[0]!.pub.channel, `raw.${id}.a`);
      await engine.publish(rawChannel(`raw.${id}.b`), { data: Buffer.from('second') });
      await waitFor(() => on(pattern).length === 2, 'second pattern delivery');
      assert.equal(on(pattern)[1]!.pub.channel, `raw.${id}.b`);
      assert.equal(on(other).length, 0);
      await engine.unsubscribe(pattern);
      await engine.unsubscribe(raw);
    });

    test("a pattern matching everything gets raw channels only, never a Herald channel's traffic; the engine's own names are not for raw use", async () => {
      const everything = patternChannel('*');
      await engine.subscribe(everything);
      try {
        const native = ch();
        await engine.subscribe(native);
        await engine.publish(native, { data: data({ n: 1 }), history: HISTORY });
        const marker = `marker.${randomUUID()}`;
        await engine.publish(rawChannel(marker), { data: Buffer.from('m') });
        await waitFor(() => on(everything).some((d) => d.pub.channel === marker), 'the raw publication, matched');
        await waitFor(() => on(native).length === 1, 'the native publication');
        const matched = on(everything).map((d) => d.pub.channel!);
        assert.deepEqual(matched.filter((name) => engine.reservedName(name)), [], 'no reserved name reached the pattern');
        assert.ok(!matched.some((name) => name.includes(native)), `the native channel's traffic reached the pattern: ${matched.join(', ')}`);
        await engine.unsubscribe(native);
      } finally {
        await engine.unsubscribe(everything);
      }
      for (const name of ['contract{x}.p', 'contract.control', 'herald{x}.p', 'herald.control'].filter((n) => engine.reservedName(n))) {
        const refused = { code: 'HERALD_ERR_RESERVED' };
        await assert.rejects(engine.publish(rawChannel(name), { data: Buffer.from('forged') }), refused, name);
        await assert.rejects(engine.subscribe(rawChannel(name)), refused, name);
        await assert.rejects(engine.getValue(name), refused, name);
        await assert.rejects(engine.setValue(name, Buffer.from('v'), 0), refused, name);
      }
      assert.equal(engine.reservedName('contractual'), false);
      assert.equal(engine.reservedName('heraldry'), false);
    });

    test('raw publications keep their order per channel', async () => {
      const raw = rawChannel(`order.${randomUUID()}`);
      await engine.subscribe(raw);
      for (let i = 0; i < 100; i++) await engine.publish(raw, { data: Buffer.from(String(i)) });
      await waitFor(() => on(raw).length === 100, '100 raw deliveries');
      assert.deepEqual(on(raw).map((d) => d.pub.data.toString()), Array.from({ length: 100 }, (_, i) => String(i)));
    });

    test('values: set with a TTL, get, expire', async () => {
      const key = `value.${randomUUID()}`;
      assert.equal(await engine.getValue(key), null);
      await engine.setValue(key, Buffer.from([1, 2, 255]), 0);
      assert.deepEqual([...(await engine.getValue(key))!], [1, 2, 255]);
      const short = `value.${randomUUID()}`;
      await engine.setValue(short, Buffer.from('x'), 200);
      assert.equal((await engine.getValue(short))?.toString(), 'x');
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(await engine.getValue(short), null);
    });

    test('a smaller history size trims at once; a larger one grows again, order kept', async () => {
      const c = ch();
      for (let i = 1; i <= 10; i++) await engine.publish(c, { data: data(i), history: { size: 10, ttlMs: 60_000 } });
      await engine.publish(c, { data: data(11), history: { size: 3, ttlMs: 60_000 } });
      assert.deepEqual((await engine.history(c, { limit: -1 })).publications.map((p) => p.offset), [9, 10, 11]);
      for (let i = 12; i <= 14; i++) await engine.publish(c, { data: data(i), history: { size: 5, ttlMs: 60_000 } });
      assert.deepEqual((await engine.history(c, { limit: -1 })).publications.map((p) => p.offset), [10, 11, 12, 13, 14]);
    });

    test('a node withdrawn is no longer listed; another node is', async () => {
      const other = `other-${randomUUID()}`;
      await engine.announce({ uid: other, name: 'other' }, 60_000);
      assert.ok((await engine.nodes()).some((n) => n.uid === other));
      await engine.withdraw(other);
      assert.ok(!(await engine.nodes()).some((n) => n.uid === other));
      await engine.withdraw('never-announced'); // nothing to forget: no error
    });

    test("channels named like the engine's own records: `nodes` beside the live nodes, and one an idempotency key could spell", async () => {
      await engine.announce({ uid: node, name: 'contract' }, 60_000);
      const first = await engine.publish('nodes', { data: data('n1'), history: HISTORY });
      const second = await engine.publish('nodes', { data: data('n2'), history: HISTORY });
      assert.equal(second.position.offset, first.position.offset + 1);
      await engine.announce({ uid: node, name: 'contract' }, 60_000);
      assert.deepEqual((await engine.history('nodes', { limit: 1, reverse: true })).publications.map(text), ['n2'], 'announcing leaves the channel be');
      assert.ok((await engine.nodes()).some((n) => n.uid === node), 'the node is still listed');
      // An idempotency key is the publisher's text: written into a name as it is, `x}.h` on channel c
      // spelled the history of channel `c}.i.x`.
      const c = ch();
      await engine.publish(c, { data: data('first'), history: HISTORY, idempotencyKey: 'x}.h' });
      const spelled = `${c}}.i.x`;
      const r = await engine.publish(spelled, { data: data('own'), history: HISTORY });
      assert.equal(r.position.offset, 1);
      assert.deepEqual((await engine.history(spelled, { limit: -1 })).publications.map(text), ['own']);
      const again = await engine.publish(c, { data: data('second'), history: HISTORY, idempotencyKey: 'x}.h' });
      assert.equal(again.suppressed, true, 'the key still suppresses the repeat');
      assert.equal(again.position.offset, 1);
    });

    test('channels are independent: offsets and history per channel', async () => {
      const a = ch();
      const b = ch();
      await engine.publish(a, { data: data(1), history: HISTORY });
      await engine.publish(a, { data: data(2), history: HISTORY });
      const rb = await engine.publish(b, { data: data(3), history: HISTORY });
      assert.equal(rb.position.offset, 1);
      assert.equal((await engine.history(a, { limit: -1 })).publications.length, 2);
    });

    test('presence: clients added with their info, read back by client id, counted by client and distinct user, removed', async () => {
      const c = ch();
      assert.deepEqual([...(await engine.presence(c))], []);
      assert.deepEqual(await engine.presenceStats(c), { numClients: 0, numUsers: 0 });
      const alice1: ClientInfo = { user: 'alice', client: 'c1', connInfo: '{"name":"Alice","n":12345678901234567890}', chanInfo: '{"role":"host"}' };
      const alice2: ClientInfo = { user: 'alice', client: 'c2' };
      const anon: ClientInfo = { user: '', client: 'c3' };
      await engine.addPresence(c, [alice1, alice2], 60_000);
      await engine.addPresence(c, [anon], 60_000);
      const present = await engine.presence(c);
      assert.deepEqual([...present.keys()].sort(), ['c1', 'c2', 'c3']);
      assert.deepEqual(present.get('c1'), alice1);
      assert.deepEqual(present.get('c2'), alice2);
      assert.deepEqual(await engine.presenceStats(c), { numClients: 3, numUsers: 2 });
      // Adding again refreshes, never duplicates.
      await engine.addPresence(c, [alice2], 60_000);
      assert.deepEqual(await engine.presenceStats(c), { numClients: 3, numUsers: 2 });
      await engine.removePresence(c, 'c2');
      await engine.removePresence(c, 'not-there');
      assert.deepEqual([...(await engine.presence(c)).keys()].sort(), ['c1', 'c3']);
      assert.deepEqual([...(await engine.presence(ch()))], [], 'presence is per channel');
    });

    test('presence: an entry not added again within its TTL is gone; one refreshed stays', async () => {
      const c = ch();
      await engine.addPresence(c, [{ user: 'u', client: 'stale' }, { user: 'u', client: 'kept' }], 300);
      await new Promise((r) => setTimeout(r, 200));
      await engine.addPresence(c, [{ user: 'u', client: 'kept' }], 60_000);
      await new Promise((r) => setTimeout(r, 250));
      assert.deepEqual([...(await engine.presence(c)).keys()], ['kept']);
      assert.deepEqual(await engine.presenceStats(c), { numClients: 1, numUsers: 1 });
    });

    test('join and leave reach the subscribed node with the client info, in order with publications, and stay out of history', async () => {
      const c = ch();
      await engine.subscribe(c);
      const info: ClientInfo = { user: 'bob', client: 'c9', connInfo: '{"a":[1,2]}', chanInfo: '"x"' };
      await engine.publish(c, { data: data(1), history: HISTORY });
      await engine.publishJoinLeave(c, 'join', info);
      await engine.publish(c, { data: data(2), history: HISTORY });
      await engine.publishJoinLeave(c, 'leave', { user: '', client: 'c10' });
      await waitFor(() => events.filter((e) => e.channel === c).length === 4, 'four events');
      assert.deepEqual(
        events.filter((e) => e.channel === c).map((e) => e.what),
        ['pub 1', 'join c9', 'pub 2', 'leave c10'],
      );
      assert.deepEqual(joins.find((j) => j.channel === c)!.info, info);
      assert.deepEqual(joins.filter((j) => j.channel === c)[1]!.info, { user: '', client: 'c10' });
      const hist = await engine.history(c, { limit: -1 });
      assert.deepEqual(hist.publications.map((p) => p.offset), [1, 2]);
      assert.equal(hist.position.offset, 2, 'a join takes no offset');
    });
  });
}
