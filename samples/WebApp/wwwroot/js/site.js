// Calls the sample's endpoints from the page and shows what came back and how long it took; shows the response
// headers of a static file and asks the server for the large file's size.
"use strict";

// The static-file headers worth a look, in this order; the ones a response lacks are left out.
const shownHeaders = ["content-type", "content-length", "content-encoding", "vary", "etag", "last-modified",
  "accept-ranges"];

function show(output, text, ok) {
  output.textContent = text;
  output.className = ok ? "ok" : "failed";
}

async function timed(request) {
  const started = performance.now();
  const response = await fetch(request.url, request.init);
  const body = await response.text();
  const ms = (performance.now() - started).toFixed(1);
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}`);
  }
  return { body, ms };
}

async function probe(output, request, check) {
  output.textContent = "…";
  try {
    const { body, ms } = await timed(request);
    show(output, check(body) ? `${body.trim()}  (${ms} ms)` : `unexpected: ${body}`, check(body));
  } catch (error) {
    show(output, String(error), false);
  }
}

function row(list, name, value, failed) {
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  dt.textContent = name;
  dd.textContent = value;
  if (failed) {
    dd.className = "failed";
  }
  list.append(dt, dd);
}

// no-store: a fresh, unconditional GET, so the headers are the server's and not the browser cache's.
async function showHeaders(list) {
  const url = list.dataset.headers;
  try {
    const response = await fetch(url, { cache: "no-store" });
    await response.arrayBuffer();
    list.replaceChildren();
    row(list, `GET ${url}`, `${response.status} ${response.statusText}`, !response.ok);
    for (const name of shownHeaders) {
      const value = response.headers.get(name);
      if (value !== null) {
        row(list, name, value);
      }
    }
  } catch (error) {
    list.replaceChildren();
    row(list, `GET ${url}`, String(error), true);
  }
}

async function showSize(output) {
  try {
    const response = await fetch(output.dataset.size, { method: "HEAD", cache: "no-store" });
    const length = Number(response.headers.get("content-length"));
    show(output, response.ok ? `HEAD says ${length.toLocaleString("en-US")} bytes` : `HTTP ${response.status}`,
      response.ok);
  } catch (error) {
    show(output, String(error), false);
  }
}

function runAll() {
  for (const output of document.querySelectorAll("output[data-probe]")) {
    probe(output, { url: output.dataset.probe }, (body) => body.includes("Hello, World!"));
  }

  const sent = `echo at ${new Date().toISOString().slice(11, 23)}`;
  const echo = document.querySelector("output[data-echo]");
  if (echo) {
    probe(echo, { url: "/echo", init: { method: "POST", headers: { "Content-Type": "text/plain" }, body: sent } },
      (body) => body === sent);
  }

  for (const list of document.querySelectorAll("dl[data-headers]")) {
    showHeaders(list);
  }
  for (const output of document.querySelectorAll("output[data-size]")) {
    showSize(output);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("probe")?.addEventListener("click", runAll);
  runAll();
});
