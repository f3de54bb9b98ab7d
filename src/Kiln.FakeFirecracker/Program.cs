Console.WriteLine("Firecracker v1.16.1");
return 0;
