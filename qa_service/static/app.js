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
        // Relative unless the service knows its public URL: the browser knows the address used.
        const url = new URL(button.dataset.citationUrl, document.baseURI).href;
        await navigator.clipboard.writeText(`${button.dataset.citation} ${url}`);
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
