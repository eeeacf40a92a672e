"""Push (issue 25): what playout devices must learn at once, through an MQTT broker.

* ``outbox``: each app.playout.signals change becomes a push_outbox row in the caller's
  transaction;
* ``publisher``: a thread of each web process sends the outbox to the broker and makes and
  drops the devices' logins (Mosquitto's dynamic-security plugin);
* ``broker``: `loaxa broker`, the Mosquitto loaxa runs with its own configuration;
* ``logins`` and ``router``: GET /api/v1/playout/push, how a device reaches the broker;
* ``topics``: the topics and messages; ``status``: what /readyz, /metrics and Thiết bị say.

The agent's side is app.playout.agent.push.
"""
