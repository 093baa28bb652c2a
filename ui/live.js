// The WebSocket feed: reconnects with back-off and tells the page when it (re)connected, so the page can
// catch up on what it missed by re-reading the API.

export function connectLive({ token, onEvent, onState }) {
  let ws;
  let delay = 500;
  let stopped = false;
  let timer;

  function open() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    onState('connecting');
    ws.addEventListener('open', () => {
      delay = 500;
      onState('live');
    });
    ws.addEventListener('message', (e) => {
      try {
        onEvent(JSON.parse(e.data));
      } catch {
        // a malformed frame is dropped; the next catch-up re-reads the truth
      }
    });
    ws.addEventListener('close', () => {
      if (stopped) return;
      onState('offline');
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    });
  }

  open();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      ws?.close();
    },
  };
}
