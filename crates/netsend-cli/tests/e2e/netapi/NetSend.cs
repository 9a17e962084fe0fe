// The C# call from Microsoft's NetMessageBufferSend reference, unchanged: the
// e2e test builds it with mcs and runs it with mono, which maps Netapi32.dll to
// libnetapi32.so through NetSend.exe.config.
//
//     mono NetSend.exe MSGNAME TEXT      (MSGNAME "-" passes null)
using System;
using System.Runtime.InteropServices;

class NetSend
{
    [DllImport("Netapi32.dll", CharSet = CharSet.Unicode)]
    public static extern int NetMessageBufferSend(
        string servername, string msgname, string fromname, string buf, int buflen);

    static int Main(string[] args)
    {
        string msgname = args[0] == "-" ? null : args[0];
        string text = args[1];
        int status = NetMessageBufferSend(null, msgname, null, text, text.Length * 2);
        Console.WriteLine("NetMessageBufferSend returned " + status);
        return status == 0 ? 0 : 1;
    }
}
