// LiteSR's page: pick images, send them one by one to POST /api/upscale, show progress,
// compare before/after, download. Everything it needs comes from this server.
"use strict";

(function () {
  const $ = (selector) => document.querySelector(selector);
  const POLL_MS = 300;
  const TOKEN_KEY = "litesr-token";
  const state = { catalogue: null, queue: [], busy: false, results: [] };

  // ------------------------------------------------------------------ token

  function token() {
    const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search); // keep it out of the address bar
    }
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function authHeaders() {
    const value = token();
    return value ? { Authorization: "Bearer " + value } : {};
  }

  function askForToken(message) {
    const form = $("#token-form");
    form.hidden = false;
    setStatus(message);
    $("#token").focus();
  }

  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value);
    $("#token-form").hidden = true;
    loadModels();
  });

  // ------------------------------------------------------------------ settings

  function setStatus(text) { $("#status").textContent = text; }

  async function errorText(response) {
    try {
      const body = await response.json();
      return body.error || response.statusText;
    } catch (_) {
      return response.status + " " + response.statusText;
    }
  }

  async function loadModels() {
    const response = await fetch("api/models", { headers: authHeaders() });
    if (response.status === 401) return askForToken(await errorText(response));
    if (!response.ok) return setStatus("cannot list the models: " + (await errorText(response)));
    state.catalogue = await response.json();
    fillSettings(state.catalogue);
    setStatus("");
    pump();
  }

  function option(select, value, text, selected) {
    const element = document.createElement("option");
    element.value = value;
    element.textContent = text;
    element.selected = selected;
    select.append(element);
  }

  function describe(model) {
    const scales = model.scales.map((s) => "×" + s).join("/");
    const psnr = model.set5_psnr == null ? "" : ", Set5 " + model.set5_psnr.toFixed(2) + " dB";
    return model.name + " — " + scales + psnr + ", " + model.speed;
  }

  function fillSettings(catalogue) {
    const models = $("#model");
    models.replaceChildren();
    for (const model of catalogue.models) option(models, model.name, describe(model), model.name === catalogue.default);
    const precision = $("#precision");
    precision.replaceChildren();
    for (const name of catalogue.precisions) option(precision, name, name, name === catalogue.default_precision);
    const format = $("#format");
    format.replaceChildren();
    for (const name of catalogue.formats) option(format, name, name === "same" ? "same as input" : name, name === "same");
    $("#limits").textContent = "up to " + Math.round(catalogue.max_upload_bytes / 1048576) + " MiB and " +
      (catalogue.max_pixels / 1e6).toFixed(1) + " megapixels per image";
    fillScales();
  }

  function selectedModel() {
    return state.catalogue.models.find((model) => model.name === $("#model").value);
  }

  function fillScales() {
    const model = selectedModel();
    const scale = $("#scale");
    scale.replaceChildren();
    for (const s of model.scales) option(scale, String(s), "×" + s, s === model.default_scale);
    scale.disabled = model.scales.length < 2;
    const params = (model.parameters / 1000).toFixed(0) + "K parameters";
    $("#model-notes").textContent = [model.arch.toUpperCase(), params, model.license, model.notes]
      .filter(Boolean).join(" · ");
  }

  $("#model").addEventListener("change", fillScales);

  // ------------------------------------------------------------------ files in

  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    enqueue(event.dataTransfer.files);
  });
  $("#files").addEventListener("change", (event) => {
    enqueue(event.target.files);
    event.target.value = "";
  });

  function enqueue(files) {
    for (const file of files) {
      const item = $("#result-template").content.firstElementChild.cloneNode(true);
      item.querySelector(".name").textContent = file.name;
      $("#results").append(item);
      state.queue.push({ file, item, settings: currentSettings() });
    }
    pump();
  }

  function currentSettings() {
    return { model: $("#model").value, scale: $("#scale").value, precision: $("#precision").value,
      format: $("#format").value };
  }

  // ------------------------------------------------------------------ one job at a time

  async function pump() {
    if (state.busy || !state.catalogue) return;
    state.busy = true;
    while (state.queue.length) {
      const job = state.queue.shift();
      try {
        await run(job);
      } catch (error) {
        fail(job.item, String(error.message || error));
      }
    }
    state.busy = false;
  }

  function say(item, text, fraction) {
    item.querySelector(".state").textContent = text;
    const bar = item.querySelector("progress");
    if (fraction == null) bar.removeAttribute("value");
    else bar.value = fraction;
  }

  function fail(item, message) {
    item.classList.add("failed");
    say(item, "failed: " + message, 0);
  }

  function randomId() {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function run(job) {
    for (;;) {
      const progressId = randomId();
      const form = new FormData();
      form.append("image", job.file, job.file.name);
      for (const [key, value] of Object.entries(job.settings)) if (value) form.append(key, value);
      form.append("progress_id", progressId);
      const stopPolling = poll(job.item, progressId);
      let response;
      try {
        response = await send(form, job.item);
      } finally {
        stopPolling();
      }
      if (response.status === 503) {
        const wait = Number(response.headers.get("Retry-After")) || 2;
        say(job.item, "server busy, retrying in " + wait + " s…", null);
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        continue;
      }
      if (response.status === 401) {
        fail(job.item, await errorText(response));
        return askForToken("this server needs its token");
      }
      if (!response.ok) return fail(job.item, await errorText(response));
      return show(job, await response.blob(), downloadName(response, job.file.name));
    }
  }

  // fetch() cannot report upload progress; XMLHttpRequest can, and gives a Response-like object.
  function send(form, item) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", "api/upscale");
      for (const [key, value] of Object.entries(authHeaders())) request.setRequestHeader(key, value);
      request.responseType = "blob";
      request.upload.onprogress = (event) => {
        if (event.lengthComputable) say(item, "uploading…", event.loaded / event.total);
      };
      request.onload = () => resolve(new Response(request.response, {
        status: request.status, statusText: request.statusText,
        headers: parseHeaders(request.getAllResponseHeaders()) }));
      request.onerror = () => reject(new Error("the server cannot be reached"));
      request.send(form);
    });
  }

  function parseHeaders(text) {
    const headers = new Headers();
    for (const line of text.trim().split(/[\r\n]+/)) {
      const at = line.indexOf(":");
      if (at > 0) headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
    }
    return headers;
  }

  function poll(item, progressId) {
    let stopped = false;
    const tick = async () => {
      if (stopped) return;
      try {
        const response = await fetch("api/progress/" + progressId, { headers: authHeaders() });
        if (!stopped && response.ok) {
          const progress = await response.json();
          if (progress.state === "waiting") {
            say(item, progress.ahead ? "waiting (" + progress.ahead + " ahead)…" : "waiting…", null);
          } else if (progress.state === "running" && progress.total) {
            say(item, "upscaling: tile " + progress.done + " of " + progress.total, progress.done / progress.total);
          } else if (progress.state === "running") {
            say(item, "upscaling…", null);
          }
        }
      } catch (_) { /* the next tick tries again */ }
      if (!stopped) setTimeout(tick, POLL_MS);
    };
    setTimeout(tick, POLL_MS);
    return () => { stopped = true; };
  }

  function downloadName(response, fallback) {
    const header = response.headers.get("Content-Disposition") || "";
    const encoded = /filename\*=utf-8''([^;]+)/i.exec(header);
    if (encoded) return decodeURIComponent(encoded[1]);
    const plain = /filename="([^"]+)"/i.exec(header);
    return plain ? plain[1] : fallback;
  }

  // ------------------------------------------------------------------ results

  function loaded(image) {
    return new Promise((resolve, reject) => {
      if (image.complete && image.naturalWidth) return resolve();
      image.onload = () => resolve();
      image.onerror = () => reject(new Error("the browser cannot display this image"));
    });
  }

  async function show(job, blob, name) {
    const item = job.item;
    const figure = item.querySelector(".compare");
    const before = item.querySelector(".before");
    const after = item.querySelector(".after");
    before.src = URL.createObjectURL(job.file);
    after.src = URL.createObjectURL(blob);
    before.alt = "original " + job.file.name;
    after.alt = "upscaled " + name;
    figure.hidden = false;
    const link = item.querySelector(".download");
    link.href = after.src;
    link.download = name;
    link.textContent = "Download " + name;
    const slider = item.querySelector(".slider");
    slider.setAttribute("aria-label", "Before/after position for " + job.file.name);
    const frame = item.querySelector(".frame");
    const move = () => frame.style.setProperty("--pos", slider.value + "%");
    slider.addEventListener("input", move);
    move();
    try {
      await Promise.all([loaded(before), loaded(after)]);
      const sizes = before.naturalWidth + "×" + before.naturalHeight + " → " + after.naturalWidth + "×" +
        after.naturalHeight;
      item.querySelector(".sizes").textContent = sizes;
      item.dataset.width = after.naturalWidth;
      item.dataset.height = after.naturalHeight;
    } catch (error) {
      item.querySelector(".sizes").textContent = error.message; // e.g. a TIFF result: still downloadable
    }
    item.classList.add("done");
    say(item, "done", 1);
    state.results.push({ name: uniqueName(name), blob });
    $("#zip").disabled = false;
  }

  function uniqueName(name) {
    const taken = new Set(state.results.map((result) => result.name));
    if (!taken.has(name)) return name;
    const dot = name.lastIndexOf(".");
    const [stem, suffix] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    for (let n = 2; ; n++) if (!taken.has(stem + "-" + n + suffix)) return stem + "-" + n + suffix;
  }

  $("#zip").addEventListener("click", async () => {
    const archive = await window.LiteSRZip.makeZip(state.results);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(archive);
    link.download = "litesr-results.zip";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  });

  loadModels().catch((error) => setStatus("cannot reach the server: " + error.message));
})();
