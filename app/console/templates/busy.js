// Slow actions show that they are working and cannot be sent twice.
//
// A form whose submit button carries data-busy="Đang ghép…" (the words shown while it
// works) is marked busy when it is sent: every submit button of the form is disabled,
// the pressed one shows its data-busy words, and the form gets aria-busy="true" so a
// screen reader says so. Without JavaScript the form still posts as usual; the server
// refuses a second post of the same action anyway. A page restored from the browser's
// back/forward cache comes back usable.
(function () {
  "use strict";

  function markBusy(form, pressed) {
    form.setAttribute("aria-busy", "true");
    form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]")
      .forEach(function (button) {
        button.dataset.idleText = button.textContent;
        button.disabled = true;
      });
    if (pressed && pressed.dataset.busy) {
      pressed.textContent = pressed.dataset.busy;
      pressed.classList.add("busy");
    }
  }

  function reset(form) {
    form.removeAttribute("aria-busy");
    form.querySelectorAll("button").forEach(function (button) {
      if (button.dataset.idleText !== undefined) {
        button.textContent = button.dataset.idleText;
        delete button.dataset.idleText;
      }
      button.disabled = false;
      button.classList.remove("busy");
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var pressed = event.submitter;
    if (!(form instanceof HTMLFormElement) || event.defaultPrevented) return;
    if (!form.querySelector("[data-busy]")) return;
    if (form.getAttribute("aria-busy") === "true") {
      event.preventDefault(); // already sent: a second press does nothing
      return;
    }
    // Disable after the browser has taken the submitter's name and value into the post.
    window.setTimeout(function () { markBusy(form, pressed); }, 0);
  });

  window.addEventListener("pageshow", function (event) {
    if (event.persisted) document.querySelectorAll("form[aria-busy=true]").forEach(reset);
  });
})();
