"""Encoded pass-through relaying for aiortc, shared by the server's relay and the venue agent's
room screen: frames received from one peer are sent on to many without decoding or re-encoding."""
