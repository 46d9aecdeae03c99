// Live mode: follow GET /v1/stream (Server-Sent Events read through fetch, because EventSource
// cannot send the Authorization header) and put each new event at the top of the table.

import { api, apiError, withParams } from "./session.js";
import { eventRow } from "./rows.js";

let running = null;

/** Parse an SSE byte stream into `{event, data, id}` messages. */
async function* messages(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { event: "message", data: [], id: null };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") message.data.push(text);
        else if (field === "event") message.event = text;
        else if (field === "id") message.id = text;
      }
      yield { ...message, data: message.data.join("\n") };
    }
  }
}

async function run(controller, params, status, onStop) {
  let position = null;
  let count = 0;
  while (!controller.signal.aborted) {
    const query = new Map(params);
    query.delete("start");
    query.delete("end");
    const headers = position === null ? {} : { "Last-Event-ID": position };
    try {
      const response = await api(withParams("/v1/stream", query), { headers, signal: controller.signal });
      if (!response.ok) {
        status.textContent = (await apiError(response)).message;
        return onStop();
      }
      status.textContent = "Following new events…";
      for await (const message of messages(response.body)) {
        if (message.id !== null) position = message.id;
        if (message.event === "event") {
          document.querySelector("#events tbody").prepend(eventRow(JSON.parse(message.data), true));
          count += 1;
          status.textContent = `Following: ${count} new event${count === 1 ? "" : "s"}`;
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return;
      status.textContent = `Reconnecting… (${err.message})`;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Toggle live mode on `button` for the page's selection. */
export function follow(button, params) {
  const status = document.getElementById("live-status");
  const stop = () => {
    if (running) running.abort();
    running = null;
    button.setAttribute("aria-pressed", "false");
  };
  if (running) {
    stop();
    status.textContent = "Live mode off";
    return;
  }
  running = new AbortController();
  button.setAttribute("aria-pressed", "true");
  run(running, params, status, stop);
}
