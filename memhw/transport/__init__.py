"""Byte transports: pyserial ports and URLs, pyvisa resources, in-process peers."""

from .base import Transport
from .faulty import FaultSpec, FaultyTransport, FrameFaults
from .inprocess import BytePeer, InProcessTransport, PeerConnection
from .serial_port import SerialTransport
from .visa import VisaTransport

__all__ = ["Transport", "SerialTransport", "VisaTransport", "InProcessTransport", "BytePeer", "PeerConnection",
           "FaultSpec", "FaultyTransport", "FrameFaults"]
