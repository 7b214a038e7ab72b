package com.smartglass.edge;

/** A libsgclient failure: the C library's sg_client_status (number and name) and its message. */
public final class SgClientException extends Exception {
    private static final long serialVersionUID = 1L;
    /** sg_client_status: EINVAL 4, ENOMEM 5, EFORMAT 6, ... (sgclient_policy.h). */
    public final int status;
    /** sg_client_status_name: "einval", "eformat", ... */
    public final String statusName;

    public SgClientException(int status, String statusName, String message) {
        super(statusName + ": " + message);
        this.status = status;
        this.statusName = statusName;
    }
}
