"""flamefire's local AWS emulator for tests: moto server plus the Run Command
pieces moto lacks.

One process. moto's server listens on an internal loopback port; a front HTTP
server on 127.0.0.1:$FLAMEFIRE_EMULATOR_PORT forwards every request to it byte
for byte, except the SSM Run Command operations listed in `EMULATED_SSM_OPS`
(config.py), which this package answers itself with awsJson1.1 shapes taken
from botocore's service model (`botocore/data/ssm/2014-11-06/service-2.json`).
A stand-in for the SSM agent runs the document's real script on this machine.

Only moto's public server API (ThreadedMotoServer, /moto-api/reset) and boto3
calls to it are used; moto internals are not touched.

Modules, bottom up (each imports only those above it): config (constants,
Config, helpers), state (EMU: all mutable state), backend (moto, Instance),
model (Document, Command, Invocation, output cuts), agent (the agent
stand-in), ssm (the operations), iam, sts, post, throttling, tls, admin
(/_flamefire), server (front server, main). awsauth.py beside the package
holds the pure SigV4/IAM/POST functions. emulator.py is the entry point.

See README.md beside this package for the admin API, the test-only EC2 tags
and the error codes.
"""
