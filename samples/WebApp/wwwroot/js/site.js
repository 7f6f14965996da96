// Calls the sample's endpoints from the page and shows what came back and how long it took.
"use strict";

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

function runAll() {
  for (const output of document.querySelectorAll("output[data-probe]")) {
    probe(output, { url: output.dataset.probe }, (body) => body.includes("Hello, World!"));
  }

  const sent = `echo ${new Date().toISOString()}`;
  const echo = document.querySelector("output[data-echo]");
  if (echo) {
    probe(echo, { url: "/echo", init: { method: "POST", headers: { "Content-Type": "text/plain" }, body: sent } },
      (body) => body === sent);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("probe")?.addEventListener("click", runAll);
  runAll();
});
