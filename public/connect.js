// The demo pages' client: a WebSocket first; where a proxy or the browser refuses it, HTTP
// streaming, then SSE (both enabled in herald.demo.json). The client tries them in this order and
// keeps the first that connects.
window.heraldClient = function () {
  'use strict';
  var ws = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var http = location.protocol + '//' + location.host + '/connection/';
  return new Centrifuge([
    { transport: 'websocket', endpoint: ws + '//' + location.host + '/connection/websocket' },
    { transport: 'http_stream', endpoint: http + 'http_stream' },
    { transport: 'sse', endpoint: http + 'sse' }
  ]);
};
