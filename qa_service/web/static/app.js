// Progressive enhancement only: the pages work without this file.
"use strict";

// Copy with the Clipboard API; where it is missing (plain http on another host) or refused,
// through a selected text area and the older copy command.
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch (error) {
      // fall through to the older way
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "copy-buffer";
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

function setUpCopying() {
  for (const group of document.querySelectorAll(".copy[data-citation-url]")) {
    const status = group.querySelector(".copy-status");
    // The service links relatively unless it knows its public URL: the browser knows the address used.
    const link = group.dataset.citationUrl;
    const absolute = new URL(link, document.baseURI).href;
    group.hidden = false;
    for (const button of group.querySelectorAll("button.copy-citation")) {
      button.addEventListener("click", async () => {
        const text = button.dataset.copy.split(link).join(absolute);
        const label = button.textContent.replace("Copy citation as ", "");
        try {
          await copyText(text);
          status.textContent = `Copied as ${label}.`;
        } catch (error) {
          status.textContent = "The citation could not be copied.";
        }
        setTimeout(() => { status.textContent = ""; }, 4000);
      });
    }
  }
}

function setUpClearing() {
  const input = document.getElementById("q");
  const clear = document.querySelector("form.ask button.clear");
  if (!input || !clear) return;
  const show = () => { clear.hidden = input.value === ""; };
  input.addEventListener("input", show);
  input.addEventListener("search", show); // Escape clears a search box too
  clear.addEventListener("click", () => {
    input.value = "";
    show();
    input.focus();
  });
  show();
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopying();
  setUpClearing();
});
