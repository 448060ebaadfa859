// Progressive enhancement only: the pages work without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("copy-status");
  for (const button of document.querySelectorAll("button.copy-citation")) {
    if (!navigator.clipboard) {
      continue; // no clipboard API (e.g. plain http on another host): keep the button hidden
    }
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(button.dataset.citation);
        button.textContent = "Copied";
        if (status) status.textContent = "Citation copied to the clipboard.";
      } catch (error) {
        button.textContent = "Copy failed";
        if (status) status.textContent = "The citation could not be copied.";
      }
      setTimeout(() => { button.textContent = "Copy citation"; }, 2000);
    });
  }
});
