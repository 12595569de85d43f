"""WeChat Official Accounts (微信公众号): see docs/channels/wechat.md."""

from connectors.wechat.config import AccountConfig, TemplateConfig, WeChatConfig
from connectors.wechat.connector import WeChatConnector

__all__ = ["AccountConfig", "TemplateConfig", "WeChatConfig", "WeChatConnector"]
