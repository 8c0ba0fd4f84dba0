svc_test(http_server WHITEBOX)
svc_test(http_client)
