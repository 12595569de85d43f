"""An SMS gateway channel for Tongdao: uplink callbacks in, messages out."""

from tongdao_sms.connector import SmsConfig, SmsConnector, sign_uplink

__all__ = ["SmsConfig", "SmsConnector", "sign_uplink"]
