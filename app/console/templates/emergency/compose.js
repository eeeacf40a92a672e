// "Phát khẩn cấp": record the announcement in the browser (MediaRecorder), as the segment
// page does, into the compose form's file field; "Tiếp tục" sends it to the confirmation.
// The recorder stays hidden where the browser cannot record; the rest works without it.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  var box = form && form.querySelector("[data-recorder]");
  if (!form || !box || !window.MediaRecorder || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia || typeof DataTransfer === "undefined") {
    return;
  }
  var recordButton = box.querySelector("[data-record]");
  var stopButton = box.querySelector("[data-stop]");
  var status = box.querySelector("[data-status]");
  var preview = box.querySelector("[data-preview]");
  var input = box.querySelector("input[type=file]");
  var recorder = null;
  var stream = null;
  var chunks = [];
  var started = 0;
  var timer = null;

  function mmss(ms) {
    var s = Math.round(ms / 1000);
    var m = Math.floor(s / 60);
    s = s % 60;
    return (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }

  function say(text) {
    status.textContent = text;
  }

  function supportedType() {
    var types = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"];
    for (var i = 0; i < types.length; i++) {
      if (MediaRecorder.isTypeSupported(types[i])) {
        return types[i];
      }
    }
    return "";
  }

  function finish() {
    clearInterval(timer);
    stream.getTracks().forEach(function (track) { track.stop(); });
    var type = recorder.mimeType || "audio/webm";
    var blob = new Blob(chunks, { type: type });
    var name = "ghi-am." + (type.indexOf("ogg") >= 0 ? "ogg" : "webm");
    var files = new DataTransfer();
    files.items.add(new File([blob], name, { type: type }));
    input.files = files.files;
    if (preview.src) {
      URL.revokeObjectURL(preview.src);
    }
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    recordButton.disabled = false;
    stopButton.disabled = true;
    say(form.dataset.msgDone + " " + mmss(Date.now() - started));
  }

  recordButton.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (s) {
      stream = s;
      chunks = [];
      var type = supportedType();
      recorder = type ? new MediaRecorder(s, { mimeType: type }) : new MediaRecorder(s);
      recorder.addEventListener("dataavailable", function (event) {
        if (event.data && event.data.size) {
          chunks.push(event.data);
        }
      });
      recorder.addEventListener("stop", finish);
      recorder.start(1000);
      started = Date.now();
      recordButton.disabled = true;
      stopButton.disabled = false;
      preview.hidden = true;
      say(form.dataset.msgRecording + " 00:00");
      timer = setInterval(function () {
        say(form.dataset.msgRecording + " " + mmss(Date.now() - started));
      }, 500);
      stopButton.focus();
    }).catch(function () {
      say(form.dataset.msgDenied);
    });
  });

  stopButton.addEventListener("click", function () {
    if (recorder && recorder.state !== "inactive") {
      recorder.stop();
    }
  });

  box.hidden = false;
}());
