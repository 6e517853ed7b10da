// The Webdis dialect's wire formats on their own: RESP reading (byte by byte, pipelined, a large
// array in many chunks in linear time), RESP writing, Webdis JSON rendering and request parsing,
// and HTTP argument decoding.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeArgument, parseCommandPath, readOptions } from '../../src/dialects/webdis/http-command.js';
import { CommandSyntaxError, parseJsonCommand, replyJson } from '../../src/dialects/webdis/json-codec.js';
import { array, bulk, encodeResp, error, integer, parseCommands, RespReader, RespSyntaxError, status } from '../../src/dialects/webdis/resp.js';

test('RespReader: replies fed byte by byte and pipelined in one chunk keep their types and bytes', () => {
  const wire = '+OK\r\n$5\r\nworld\r\n$-1\r\n:42\r\n-ERR nope\r\n*3\r\n$1\r\na\r\n*-1\r\n*2\r\n:1\r\n$0\r\n\r\n*0\r\n';
  for (const chunking of [1, wire.length]) {
    const r = new RespReader();
    const got: Array<{ value: unknown; raw: string }> = [];
    for (let i = 0; i < wire.length; i += chunking) {
      r.feed(Buffer.from(wire.slice(i, i + chunking)));
      for (let x = r.next(); x; x = r.next()) got.push({ value: x.value, raw: x.raw.toString() });
    }
    assert.deepEqual(
      got.map((g) => g.raw),
      ['+OK\r\n', '$5\r\nworld\r\n', '$-1\r\n', ':42\r\n', '-ERR nope\r\n', '*3\r\n$1\r\na\r\n*-1\r\n*2\r\n:1\r\n$0\r\n\r\n', '*0\r\n'],
    );
    assert.deepEqual(got[0]!.value, status('OK'));
    assert.deepEqual(got[1]!.value, bulk('world'));
    assert.deepEqual(got[2]!.value, bulk(null));
    assert.deepEqual(got[3]!.value, integer(42));
    assert.deepEqual(got[4]!.value, error('ERR nope'));
    assert.deepEqual(got[5]!.value, array([bulk('a'), array(null), array([integer(1), bulk('')])]));
    assert.deepEqual(got[6]!.value, array([]));
  }
});

test('RespReader: a 200,000-element array arriving in 16 KiB chunks is read in linear time', () => {
  const n = 200_000;
  const wire = Buffer.from(`*${n}\r\n` + Array.from({ length: n }, (_, i) => `$${String(i).length}\r\n${i}\r\n`).join(''));
  const r = new RespReader();
  const started = Date.now();
  let reply;
  for (let i = 0; i < wire.length; i += 16 * 1024) {
    r.feed(wire.subarray(i, i + 16 * 1024));
    reply = r.next() ?? reply;
  }
  assert.ok(reply, 'the reply came out');
  assert.equal(reply.value.type === 'array' && reply.value.items?.length, n);
  assert.deepEqual(reply.raw, wire);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

test('RespReader: protocol errors throw', () => {
  for (const bad of ['?x\r\n', ':1.5\r\n', '$abc\r\n', '$3\r\nabcd\r\n']) {
    const r = new RespReader();
    r.feed(Buffer.from(bad));
    assert.throws(() => r.next(), RespSyntaxError, bad);
  }
});

test('encodeResp and parseCommands', () => {
  assert.equal(encodeResp(array([bulk('message'), bulk('rc'), bulk('hi there')])).toString(), '*3\r\n$7\r\nmessage\r\n$2\r\nrc\r\n$8\r\nhi there\r\n');
  assert.equal(encodeResp(status('line\r\nbreak')).toString(), '+line break\r\n');
  assert.deepEqual(parseCommands(Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nINCR\r\n:7\r\n')).map((c) => c.map(String)), [
    ['GET', 'k'],
    ['INCR', '7'],
  ]);
  for (const bad of ['PING\r\n', '*1\r\n*1\r\n$1\r\na\r\n', '*0\r\n', '*1\r\n$-1\r\n', '*2\r\n$3\r\nGET\r\n', '']) {
    assert.throws(() => parseCommands(Buffer.from(bad)), RespSyntaxError, JSON.stringify(bad));
  }
  // Deep nesting is refused rather than recursed into.
  assert.throws(() => parseCommands(Buffer.from('*1\r\n'.repeat(100))), RespSyntaxError);
});

test('Webdis JSON: replies by type, compact, label as spelled', () => {
  assert.equal(replyJson('SET', status('OK')), '{"SET":[true,"OK"]}');
  assert.equal(replyJson('get', error('ERR x')), '{"get":[false,"ERR x"]}');
  assert.equal(replyJson('GET', bulk('wo"rld')), '{"GET":"wo\\"rld"}');
  assert.equal(replyJson('INCR', integer('-9223372036854775808')), '{"INCR":-9223372036854775808}');
  assert.equal(replyJson('GET', bulk(null)), '{"GET":null}');
  assert.equal(replyJson('MGET', array([bulk('a'), bulk(null), integer(2), array([status('x')]), error('E')])), '{"MGET":["a",null,2,["x"],null]}');
  assert.equal(replyJson('hgetall', array([bulk('2'), bulk('b'), bulk('1'), bulk('a')])), '{"hgetall":{"2":"b","1":"a"}}', 'insertion order');
  assert.equal(replyJson('HGETALL', array([bulk('odd')])), '{"HGETALL":["odd"]}');
  assert.equal(replyJson('INFO', bulk('# Server\r\nredis_version:7.0.15\r\nos:Linux:x\r\n\r\n')), '{"INFO":{"redis_version":"7.0.15","os":"Linux:x"}}');
  assert.equal(replyJson('XREAD', array([array([bulk('s'), array([array([bulk('1-0'), array([bulk('k'), bulk('v')])])])])])), '{"XREAD":{"s":[{"id":"1-0","msg":{"k":"v"}}]}}');
});

test('Webdis JSON requests: arrays of strings and numbers only', () => {
  assert.deepEqual(parseJsonCommand('["SUBSCRIBE", 666]').map(String), ['SUBSCRIBE', '666']);
  assert.deepEqual(parseJsonCommand('["INCRBYFLOAT","k",1.5,-0,1e21]').map(String), ['INCRBYFLOAT', 'k', '1.5', '0', '1000000000000000000000']);
  for (const bad of ['', '{}', '[]', '[null]', '["GET",{}]', '["GET",false]', '["GET",[]]', 'nul']) {
    assert.throws(() => parseJsonCommand(bad), CommandSyntaxError, bad);
  }
});

test('HTTP arguments: decoding, extensions, database prefix, options', () => {
  assert.equal(decodeArgument('a%2fb+c%2E%zz%4').toString(), 'a/b c.%zz%4');
  assert.equal(decodeArgument('%C3%A9').toString(), 'é');
  const opts = readOptions('')!;
  const cmd = parseCommandPath('2/SET/a%2fb/x.txt', opts)!;
  assert.deepEqual(cmd.args.map(String), ['SET', 'a/b', 'x']);
  assert.equal(cmd.db, 2);
  assert.equal(cmd.format.contentType, 'text/plain');
  assert.deepEqual(parseCommandPath('GET/file.name', opts)!.args.map(String), ['GET', 'file.name']);
  assert.deepEqual(parseCommandPath('123', opts)!.args.map(String), ['123'], 'a lone number is a command, not a database');
  assert.equal(parseCommandPath('', opts), undefined);
  assert.equal(parseCommandPath('5/', opts), undefined);
  assert.equal(readOptions('jsonp=a.b[0]')!.jsonp, 'a.b[0]');
  assert.equal(readOptions('jsonp=x%3Dalert(1)'), undefined);
  assert.equal(readOptions('type=text/html%0d%0aX:1'), undefined);
  assert.equal(readOptions('filename=a"b%0d.txt')!.filename, 'a_b_.txt');
});
