// "Nói trực tiếp": the microphone, in chunks of a quarter of a second (MediaRecorder),
// over a WebSocket to loaxa, which feeds the session's mount on the hub. The server
// checks the console session and its CSRF token, and says in words why it refuses.
(function () {
  "use strict";
  var box = document.getElementById("speak");
  if (!box) {
    return;
  }
  var start = box.querySelector("[data-start]");
  var status = box.querySelector("[data-status]");
  var socket = null;
  var recorder = null;

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

  if (!window.MediaRecorder || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia ||
      !window.WebSocket) {
    say(box.dataset.msgUnsupported);
    start.disabled = true;
    return;
  }

  function stop() {
    if (recorder && recorder.state !== "inactive") {
      recorder.stop();
      recorder.stream.getTracks().forEach(function (track) { track.stop(); });
    }
    start.disabled = false;
  }

  start.addEventListener("click", function () {
    start.disabled = true;
    say(box.dataset.msgConnecting);
    // No echo cancellation nor noise suppression: nothing plays back on the phone, and a
    // suppressor that takes a siren or a steady tone for noise would cut it off the air.
    // Gain control stays: phones are held near and far; the recording is normalised anyway.
    var wanted = { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: true } };
    navigator.mediaDevices.getUserMedia(wanted).then(function (stream) {
      var type = supportedType();
      var format = type.indexOf("ogg") >= 0 ? "ogg" : "webm";
      var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
        "/api/v1/live/" + box.dataset.live + "/ws?format=" + format +
        "&csrf_token=" + encodeURIComponent(box.dataset.csrf);
      socket = new WebSocket(url);
      socket.binaryType = "arraybuffer";
      socket.addEventListener("open", function () {
        recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
        recorder.addEventListener("dataavailable", function (event) {
          if (event.data && event.data.size && socket.readyState === WebSocket.OPEN) {
            socket.send(event.data);
          }
        });
        recorder.start(250);
        say(box.dataset.msgOnAir);
      });
      socket.addEventListener("message", function (event) {
        var answer = {};
        try { answer = JSON.parse(event.data); } catch (e) { return; }
        if (answer.error) {
          say(box.dataset.msgRefused + " " + answer.error);
          stop();
        }
      });
      socket.addEventListener("close", function () {
        stop();
        if (status.textContent === box.dataset.msgOnAir) {
          say(box.dataset.msgStopped);
        }
      });
    }).catch(function () {
      say(box.dataset.msgDenied);
      start.disabled = false;
    });
  });
}());
